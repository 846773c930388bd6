#!/usr/bin/env bash
# kiln's main job end to end on a model that ships in the repo: build an engine, run it, print outputs and
# timing, then the same from Python. Uses the GPU when kiln has a usable CUDA backend there, else the CPU
# backend, and says which. Builds only what it runs (the CLI and the Python module); scripts/test.sh builds
# the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KILN_BUILD_DIR:-build}
KILN_BUILD_TARGETS=kiln_cli scripts/setup.sh
KILN="$BUILD_DIR/bin/kiln"
"$KILN" build models/tiny_cnn.onnx -o "$BUILD_DIR/tiny_cnn.kiln" --shapes image:1x3x32x32,8x3x32x32,32x3x32x32
"$KILN" run "$BUILD_DIR/tiny_cnn.kiln" --input image=models/tiny_cnn.input.npy --iterations 20

# The Python module: configured when Python headers and pybind11 were found (setup.sh installs them).
has_module() { cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep -q '^kiln_python:'; }
has_module || cmake -S . -B "$BUILD_DIR" >/dev/null  # a build dir configured before pybind11 was installed
if ! has_module; then
  echo "demo: the Python module is not configured (needs python3-dev and pybind11-dev); skipping the Python part" >&2
  exit 0
fi
cmake --build "$BUILD_DIR" -j "${KILN_JOBS:-$(nproc)}" --target kiln_python
PYTHON=$(sed -n 's/^KILN_PYTHON_USED:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
echo
echo "The same from Python (PYTHONPATH=$BUILD_DIR/python $PYTHON):"
PYTHONPATH="$BUILD_DIR/python" "$PYTHON" - "$BUILD_DIR/tiny_cnn.kiln" <<'PY'
import sys, numpy as np, kiln
engine = kiln.Engine.load(sys.argv[1])
ctx = engine.create_context()
probs = ctx.infer({"image": np.load("models/tiny_cnn.input.npy")})["probs"]
print(engine)
print("classes:", probs.argmax(axis=1), "| max |error| vs the reference:", np.abs(probs - np.load("models/tiny_cnn.expected.npy")).max())
PY
