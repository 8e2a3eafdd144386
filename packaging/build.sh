#!/usr/bin/env bash
# Configures and builds SAE Workbench into ./build (Release, both cores, ccache when present).
# Extra arguments go to the configure step, e.g. -DTorch_DIR=/opt/libtorch/share/cmake/Torch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SAEWB_BUILD_DIR:-$root/build}"
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$jobs"
