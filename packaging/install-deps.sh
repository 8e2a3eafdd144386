#!/usr/bin/env bash
# Installs every Debian 12 package that SAE Workbench needs to build, run and test.
# Idempotent: apt-get skips what is already installed. Works as root or through sudo.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ccache git pkg-config clang-format
  # LibTorch (CPU) and an optimised BLAS: without libopenblas0-pthread Debian's LibTorch
  # sends every fp32 matrix product to the reference BLAS, about 100x slower.
  libtorch-dev libopenblas0-pthread
  # oneDNN's sgemm (the training step picks the faster of it and LibTorch's BLAS by measurement);
  # Gloo's headers for LibTorch's c10d ProcessGroupGloo (data-parallel training)
  libdnnl-dev libgloo-dev
  # Qt 6 and QCustomPlot for Qt 6 (the -dev package ships both the Qt5 and Qt6 builds)
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6 libgl1-mesa-dev libxkbcommon-dev
  # JSON; parquet page codecs (snappy, zstd, gzip)
  nlohmann-json3-dev libsnappy-dev libzstd-dev zlib1g-dev
  # GUI tests and screenshots without a display
  xvfb xauth
  # checks of the .desktop file and the AppStream metainfo (CTest, packaging/build-deb.sh)
  desktop-file-utils appstream
  # reference scripts for golden values (run with Debian's /usr/bin/python3)
  python3 python3-torch python3-numpy
)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps.sh: needs root or sudo to install Debian packages" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
