#!/usr/bin/env bash
# Screenshots of the workbench window for the README: runs the built app (./build, nothing is
# built here) under a virtual X server with a short synthetic run started, and lets the app grab
# its own window (QWidget::grab) during and after training into docs/screenshots/.
#
#   ./packaging/screenshots.sh            needs xvfb-run (package xvfb, installed by install-deps)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app="$root/build/app/sae-workbench"
out="$root/docs/screenshots"
if [[ ! -x "$app" ]]; then
  echo "screenshots.sh: $app not found; build first (./packaging/build.sh)" >&2
  exit 2
fi
command -v xvfb-run >/dev/null || {
  echo "screenshots.sh: xvfb-run not found; install the Debian package xvfb" >&2
  exit 2
}
mkdir -p "$out"
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT
# A private config folder: the app's remembered preset and window layout stay out of it.
export XDG_CONFIG_HOME="$runs/config" XDG_DATA_HOME="$runs/data"
# About 15 s of training: enough steps for curves and histograms, short enough for CI.
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --preset synthetic-demo --set training_tokens=600000 --set lr_decay_steps=100 \
  --set l1_warm_up_steps=100 --set feature_sampling_window=100 --set dead_feature_window=100 \
  --start --out "$runs" --screenshot-dir "$out" --screenshot-after-ms 20000
ls -l "$out"/*.png
