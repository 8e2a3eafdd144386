#!/usr/bin/env bash
# Fresh machine to a test report: installs the Debian packages, builds, runs every test suite
# through CTest (its summary line is the verdict).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
cd "${SAEWB_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)"
