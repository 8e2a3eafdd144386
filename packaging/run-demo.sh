#!/usr/bin/env bash
# Fresh machine to a finished demo run: installs the Debian packages, builds, and trains the
# demo preset in SAE Workbench. With a display ($DISPLAY or $WAYLAND_DISPLAY) the window opens
# and starts training; without one the same training runs headless and writes the run and
# every plot (PNG, SVG, PDF, CSV) to disk.
#
#   ./packaging/run-demo.sh [RUNS_DIR]     (default: ./runs)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
runs="${1:-$root/runs}"
mkdir -p "$runs"
app="$root/build/app/sae-workbench"
# The demo world's preset when it is there, else the synthetic ground-truth demo.
preset=synthetic-demo
if "$root/build/app/sae-train" --list-presets | grep -qx demo; then preset=demo; fi

if [[ -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ]]; then
  echo "Opening SAE Workbench with preset $preset; runs go to $runs"
  "$app" --preset "$preset" --start --out "$runs"
  echo "Runs are in $runs"
else
  echo "No display: training preset $preset headless; runs go to $runs"
  QT_QPA_PLATFORM=offscreen "$app" --headless --preset "$preset" --out "$runs" | tee "$runs/.last-demo.log"
  run="$(sed -n 's/^Run folder: //p' "$runs/.last-demo.log" | tail -n 1)"
  rm -f "$runs/.last-demo.log"
  echo "Run written to $run"
  echo "Plots (PNG, SVG, PDF, CSV) in $run/plots"
fi
