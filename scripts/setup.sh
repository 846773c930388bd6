#!/usr/bin/env bash
# Installs what kiln needs (Debian packages) when missing, then configures and builds kiln in ./build.
# Does nothing it need not: packages already present are not touched, and a machine without network or
# apt (the GPU machine) builds with what it has.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake ninja-build g++ protobuf-compiler libprotobuf-dev libonnx-dev libonnx-testdata libcli11-dev
          nlohmann-json3-dev libfmt-dev libopenblas-dev libgtest-dev libgmock-dev libbenchmark-dev ccache
          python3-dev pybind11-dev libdlpack-dev python3-numpy python3-pytest python3-venv
          chromium)  # chromium: the picture tests render kiln's SVG/HTML in a headless browser

# KILN_NO_APT=1 skips package installation (machines without network, such as the GPU machine).
if [ -z "${KILN_NO_APT:-}" ] && command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! { timeout 300 $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get install -y -qq "${missing[@]}"; } >/tmp/kiln-apt.log 2>&1; then
      echo "setup: apt-get failed (no network?); building with what is installed. Log: /tmp/kiln-apt.log" >&2
    fi
  fi
fi

# cmake/ninja may live in a Python venv (the GPU machine).
for d in /opt/torch/.venv/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done
GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)

CUDA_FLAG=-DKILN_WITH_CUDA=ON
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: nvcc not found; building without the CUDA code" >&2
  CUDA_FLAG=-DKILN_WITH_CUDA=OFF
fi

BUILD_DIR=${KILN_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90 "$CUDA_FLAG" >/dev/null
fi
JOBS=${KILN_JOBS:-$(nproc)}
# KILN_BUILD_TARGETS: only these targets (a GPU session that needs the tests and the CLI, not everything).
cmake --build "$BUILD_DIR" -j "$JOBS" ${KILN_BUILD_TARGETS:+--target $KILN_BUILD_TARGETS}
