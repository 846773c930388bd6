#!/usr/bin/env bash
# Builds kiln and runs every CPU test (unit, CLI, ONNX conformance). GPU tests run too where a GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
LABELS=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then LABELS="cpu|gpu"; fi
ctest --test-dir "${KILN_BUILD_DIR:-build}" -L "$LABELS" --output-on-failure -j "${KILN_JOBS:-$(nproc)}"
