#!/usr/bin/env bash
# Runs every libFuzzer target (or those named) for RUNS inputs each, one after another, and
# prints a summary: runs done, exec/s, wall time, corpus size, peak RSS, crashes.
#
#   fuzz/run-all.sh [-n RUNS] [-f] [target...]     targets: config safetensors pth pth_pickle npy
#                                                  parquet tokenizer
#
#   -n RUNS    inputs per target (default 1000000)
#   -f         start from the seeds alone (forget the corpus earlier runs grew)
# Environment: BUILD_DIR (default build-fuzz), FUZZ_SEED (libFuzzer -seed; default random),
#              FUZZ_TIMEOUT (per-input seconds, default 10), FUZZ_RSS_MB (default 4096).
#
# Seeds are copied from tests/fixtures at run time (and tests/fixtures/fuzz-regressions/<target>,
# the inputs that once found bugs). The grown corpus lives in $BUILD_DIR/corpus/<target>, logs in
# $BUILD_DIR/logs/<target>.log, crashing inputs in $BUILD_DIR/artifacts/<target>/. Exit status 1
# when any target crashed, leaked, timed out or ran out of memory.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-fuzz}
RUNS=1000000
FRESH=0
while getopts "n:f" opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    f) FRESH=1 ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(config safetensors pth pth_pickle npy parquet tokenizer)

FIX=$ROOT/tests/fixtures

# Seed files per target (globs relative to tests/fixtures).
seeds_for() {
  case $1 in
    config) echo "$ROOT/resources/presets/*.json lm_training/config.json" ;;
    safetensors) echo "formats/*.safetensors data/*.safetensors data/cached_small/*.safetensors
                       trainer/pretrained/*.safetensors trainer/cached/2.safetensors
                       model/*/model.safetensors" ;;
    pth | pth_pickle) echo "pth/*.pth model/*/model_final.pth" ;;
    npy) echo "demo/*.npy tokens/files/*.npy lm_training/tokens.npy" ;;
    parquet) echo "tokens/parquet/*.parquet tokens/parquet/shards/data/*.parquet" ;;
    tokenizer) echo "tokenizer/tokenizer.json demo/tokenizer.json" ;;
  esac
}
# Largest input libFuzzer may build: the biggest seed of each format fits.
max_len_for() {
  case $1 in
    config) echo 8192 ;;
    safetensors) echo 65536 ;;
    pth) echo 32768 ;;
    pth_pickle) echo 8192 ;;
    *) echo 16384 ;;
  esac
}
dicts_for() {
  case $1 in
    config) echo "json config" ;;
    tokenizer) echo "json tokenizer" ;;
    safetensors) echo "json safetensors" ;;
    pth_pickle) echo pth ;;
    *) echo "$1" ;;
  esac
}

declare -a SUMMARY
STATUS=0
for t in "${TARGETS[@]}"; do
  bin=$BUILD_DIR/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "no $bin: build first (cmake -S fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ && cmake --build build-fuzz)" >&2
    exit 2
  fi
  seeds=$BUILD_DIR/seeds/$t
  corpus=$BUILD_DIR/corpus/$t
  artifacts=$BUILD_DIR/artifacts/$t/
  dict=$BUILD_DIR/dicts/$t.dict
  rm -rf "$seeds"
  [ "$FRESH" = 1 ] && rm -rf "$corpus"
  mkdir -p "$seeds" "$corpus" "$artifacts" "$BUILD_DIR/logs" "$BUILD_DIR/dicts"
  (cd "$FIX" && for f in $(seeds_for "$t"); do [ -f "$f" ] && cp "$f" "$seeds/$(echo "$f" | tr / _)"; done)
  if [ "$t" = config ] && command -v jq > /dev/null; then
    # The trainer cases embed real configs under "config".
    for f in "$FIX"/trainer/case_*.json; do jq '.config' "$f" > "$seeds/$(basename "$f")"; done
  fi
  if [ "$t" = pth_pickle ]; then
    # This target takes data.pkl alone: take it out of each seed archive.
    for f in "$seeds"/*; do
      python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
sys.stdout.buffer.write(z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))' \
        "$f" > "$f.pkl" 2> /dev/null || rm -f "$f.pkl"
      rm -f "$f"
    done
  fi
  [ -d "$FIX/fuzz-regressions/$t" ] && cp "$FIX/fuzz-regressions/$t"/* "$seeds/" 2> /dev/null
  : > "$dict"
  for d in $(dicts_for "$t"); do cat "$ROOT/fuzz/dicts/$d.dict" >> "$dict"; done

  log=$BUILD_DIR/logs/$t.log
  args=(-runs="$RUNS" -max_len="$(max_len_for "$t")" -timeout="${FUZZ_TIMEOUT:-10}"
        -rss_limit_mb="${FUZZ_RSS_MB:-4096}" -dict="$dict" -artifact_prefix="$artifacts"
        -print_final_stats=1)
  [ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")
  echo "== fuzz_$t: $(ls "$seeds" | wc -l) seeds, $(ls "$corpus" | wc -l) corpus files; log $log"
  echo "   $bin ${args[*]} $corpus $seeds"
  start=$(date +%s)
  # LeakSanitizer on; the UBSan reports are fatal already (-fno-sanitize-recover at build time).
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
    "$bin" "${args[@]}" "$corpus" "$seeds" > "$log" 2>&1
  rc=$?
  wall=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  seed=$(sed -n 's/^INFO: Seed: *//p' "$log" | head -1)
  cov=$(grep -E '^(#[0-9]+).*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  units=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then
    verdict="ok"
  else
    verdict="FAILED (exit $rc): $(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|==ERROR' "$log")"
    STATUS=1
  fi
  SUMMARY+=("$(printf '%-12s %10s %8s %6ss %6s %7s %8s %12s  %s' "$t" "${runs:-?}" "${eps:-?}" "$wall" \
    "${cov:-?}" "$units" "${rss:-?}" "${seed:-?}" "$verdict")")
  echo "   ${SUMMARY[-1]}"
done

echo
printf '%-12s %10s %8s %7s %6s %7s %8s %12s  %s\n' target runs exec/s wall cov corpus rss_mb seed result
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
