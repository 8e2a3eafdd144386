#!/usr/bin/env bash
# Screenshots of the workbench window for the README: runs the built app (./build, nothing is
# built here) under a virtual X server with the demo preset's run started, and lets the app grab
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
# The demo run (about 75 s once the demo world is cached; its first build takes about three
# minutes more): one shot 45 s in, with CE evals on the plots, and one when it has finished.
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$app" --preset demo --start --out "$runs" --screenshot-dir "$out" --screenshot-after-ms 45000
ls -l "$out"/*.png
