#!/usr/bin/env bash
# Fresh machine to a finished demo run: installs the Debian packages, builds, and trains the
# synthetic-demo preset headless. The run (config, metrics.jsonl, checkpoints, final SAE in
# SAELens's layout) lands in runs/synthetic-demo-<timestamp>/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
out="${1:-$root/runs/synthetic-demo-$(date +%Y%m%d-%H%M%S)}"
"$root/build/app/sae-train" --preset synthetic-demo --out "$out"
echo "Run written to $out"
