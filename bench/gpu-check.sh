#!/usr/bin/env bash
# The GPU check of issue 6 §5, for a machine with an NVIDIA GPU and a CUDA build of LibTorch
# (cxx11 ABI; Debian's LibTorch is CPU-only). In about ten minutes it:
#   1. builds sae-train and the numeric suites against that LibTorch into build-gpu/;
#   2. runs the parity suites (Adam, the trainer against the Python fixtures, the sparse and
#      chunked steps, the bf16 product) with that LibTorch;
#   3. trains the synthetic demo for 200 steps on the CPU and on CUDA, in fp32 and with autocast
#      (bf16), and checks that each CUDA run's last logged MSE and L1 are within 2% of the CPU
#      run's (the same batches; only kernels and rounding differ);
#   4. times 20 steps of the notebook's shape (512 -> 32768, batch 4096) on CUDA, fp32 and
#      autocast, and prints tokens/s from each run's metrics.
# usage: bench/gpu-check.sh /path/to/libtorch [cuda device, default cuda]
# Exit status: 0 all passed, 1 a check failed, 2 bad arguments.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
libtorch="${1:-}"
device="${2:-cuda}"
if [[ -z "$libtorch" || ! -f "$libtorch/share/cmake/Torch/TorchConfig.cmake" ]]; then
  echo "usage: bench/gpu-check.sh /path/to/libtorch [cuda|cuda:N]" >&2
  echo "  the folder must be a CUDA build of LibTorch (it holds share/cmake/Torch/TorchConfig.cmake);" >&2
  echo "  download the cxx11-ABI build matching your CUDA driver from pytorch.org" >&2
  exit 2
fi
build="$root/build-gpu"
out="$(mktemp -d /tmp/saewb-gpu-check.XXXXXX)"
start=$SECONDS
command -v nvidia-smi >/dev/null && nvidia-smi -L

echo "== 1. build against $libtorch (into $build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$libtorch/share/cmake/Torch"
suites=(tst_adam_step tst_trainer_parity tst_sparse_step tst_bf16_gemm)
cmake --build "$build" -j "$(nproc)" --target sae-train "${suites[@]}"

echo "== 2. parity suites"
for suite in "${suites[@]}"; do
  QT_QPA_PLATFORM=offscreen "$build/tests/$suite" -silent
done

# The last logged value of a metric in a run's metrics.jsonl.
last_value() {
  grep -o "\"$2\":[-0-9.eE+]*" "$1/metrics.jsonl" | tail -1 | cut -d: -f2
}
# Whether a and b agree within a relative tolerance.
within() {
  awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d;
    m = b < 0 ? -b : b; exit !(d <= tol * m) }'
}

echo "== 3. synthetic demo, 200 steps: CPU against $device"
failed=0
common=(--preset synthetic-demo --set training_tokens=204800 --set lr_decay_steps=0
        --set l1_warm_up_steps=50 --set n_checkpoints=0 --set wandb_log_frequency=10)
for precision in fp32 bf16; do
  autocast=$([[ $precision == bf16 ]] && echo true || echo false)
  for dev in cpu "$device"; do
    "$build/app/sae-train" "${common[@]}" --set "device=$dev" --set "autocast=$autocast" \
      --out "$out/$precision-${dev//:/_}" >"$out/$precision-${dev//:/_}.log" 2>&1
  done
  for metric in losses/mse_loss losses/l1_loss; do
    cpu=$(last_value "$out/$precision-cpu" "$metric")
    gpu=$(last_value "$out/$precision-${device//:/_}" "$metric")
    if within "$gpu" "$cpu" 0.02; then verdict=ok; else verdict=FAILED; failed=1; fi
    echo "$precision $metric: cpu $cpu, $device $gpu ($verdict)"
  done
done

echo "== 4. notebook shape on $device, 20 steps"
notebook=(--preset synthetic-demo --set d_in=512 --set expansion_factor=64 --set train_batch_size=4096
          --set context_size=1024 --set store_batch_size=16 --set n_batches_in_buffer=8
          --set training_tokens=81920 --set lr_decay_steps=0 --set l1_warm_up_steps=0
          --set n_checkpoints=0 --set wandb_log_frequency=1 --set "device=$device")
for precision in fp32 bf16; do
  autocast=$([[ $precision == bf16 ]] && echo true || echo false)
  run="$out/notebook-$precision"
  "$build/app/sae-train" "${notebook[@]}" --set "autocast=$autocast" --out "$run" >"$run.log" 2>&1
  # tokens/s over steps 10..20 (after warm-up), from the wall clock each metrics line carries
  t10=$(grep -o '"wall_seconds":[-0-9.eE+]*' "$run/metrics.jsonl" | sed -n 10p | cut -d: -f2)
  t20=$(grep -o '"wall_seconds":[-0-9.eE+]*' "$run/metrics.jsonl" | tail -1 | cut -d: -f2)
  awk -v a="$t10" -v b="$t20" -v p="$precision" \
    'BEGIN { printf "%s: %.0f tokens/s (steps 10-20)\n", p, 10 * 4096 / (b - a) }'
done

echo "== done in $((SECONDS - start)) s; runs in $out"
exit "$failed"
