#!/usr/bin/env bash
# Builds the Debian package: configures ./build when needed, builds the two programs, checks the
# desktop file and the AppStream metainfo, runs CPack, and prints the path of the .deb (the only
# line on stdout).
# Extra arguments go to the configure step, e.g. -DCPACK_PACKAGE_CONTACT="Name <mail>".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SAEWB_BUILD_DIR:-$root/build}"
jobs="$(nproc 2>/dev/null || echo 2)"

if [ ! -f "$build/CMakeCache.txt" ] || [ ! -f "$build/CPackConfig.cmake" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >&2
fi
# Only the installed programs: cpack does not build anything itself (see packaging/CMakeLists.txt).
cmake --build "$build" -j "$jobs" --target sae-train sae-workbench >&2

for tool in desktop-file-validate appstreamcli dpkg-shlibdeps; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-deb.sh: $tool not found; run packaging/install-deps.sh" >&2
    exit 1
  fi
done
desktop_file=("$root"/packaging/deb/*.desktop)
metainfo=("$root"/packaging/deb/*.metainfo.xml)
if [ -n "$(desktop-file-validate "${desktop_file[@]}")" ]; then
  desktop-file-validate "${desktop_file[@]}" >&2
  echo "build-deb.sh: fix the desktop file above" >&2
  exit 1
fi
appstreamcli validate --no-net "${metainfo[@]}" >/dev/null || {
  appstreamcli validate --no-net "${metainfo[@]}" >&2
  echo "build-deb.sh: fix the AppStream metainfo above" >&2
  exit 1
}

cd "$build"
rm -f sae-workbench_*.deb
cpack -G DEB >&2
ls "$build"/sae-workbench_*.deb
