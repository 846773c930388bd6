#!/usr/bin/env bash
# The kiln Python package on the GPU machine, in one command (the machine starts bare):
#   tests/gpu/python_gpu.sh [build] [pytest] [models] [checks] [bench]     (default: all five)
# build: the module for the venv's Python with CUDA (only the kiln_python target, in build-pygpu);
# pytest: python/tests including the torch/CUDA cases; models: bench/export_models.py into /tmp/m;
# checks: tests/gpu/python_gpu_checks.py (from_torch ResNet-50/BERT, onnxruntime vs kiln.InferenceSession);
# bench: bench/python_overhead.py. Logs, JSON and markdown go to $OUT (or /tmp/kiln-out); prints a summary
# and exits non-zero when a step fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/torch/.venv/bin" KILN_NO_APT=1 KILN_JOBS=${KILN_JOBS:-16} PYTHONUNBUFFERED=1
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
PY=${KILN_PYTHON:-/opt/torch/.venv/bin/python3}
BUILD=${KILN_PY_BUILD_DIR:-build-pygpu}
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build pytest models checks bench)
has() { [[ " ${steps[*]} " == *" $1 "* ]]; }
step() { echo "== $(date +%T) $*"; }
failed=()
export PYTHONPATH="$PWD/$BUILD/python" KILN_SOURCE_DIR="$PWD"

# A fresh machine has neither the module nor the models: later steps make what they need.
ls "$BUILD"/python/kiln/_kiln*.so >/dev/null 2>&1 || steps+=(build)
if has checks && [ ! -f /tmp/m/gpt2.onnx ]; then steps+=(models); fi
if has build; then
  step build kiln_python with CUDA for "$PY"
  KILN_BUILD_DIR="$BUILD" KILN_BUILD_TARGETS=kiln_python scripts/setup.sh >"$OUT/python_build.log" 2>&1
  rc=$?
  # CMake's verdict on the module (setup.sh hides configure output): which Python and pybind11, or what is missing.
  [ -f "$BUILD/CMakeCache.txt" ] && cmake "$BUILD" 2>&1 | grep -E "kiln: (Python|cuDNN)"
  if [ $rc -ne 0 ]; then
    grep -E "error|Error|FAILED|missing" "$OUT/python_build.log" | head -40
    echo "python_gpu: the build failed (log: $OUT/python_build.log)"; exit 1
  fi
  "$PY" -c "import kiln; print('kiln', kiln.__version__, 'cuda:', kiln.cuda_available() or kiln.cuda_unavailable_reason())" ||
    { echo "python_gpu: import kiln failed"; exit 1; }
fi
if has pytest; then
  step pytest
  "$PY" -m pytest -q -rs -p no:cacheprovider python/tests >"$OUT/python_pytest.log" 2>&1 || failed+=(pytest)
  grep -E "passed|failed|SKIPPED|FAILED|Error" "$OUT/python_pytest.log" | tail -25
fi
if has models; then
  step export the benchmark models
  [ -f /tmp/m/gpt2.onnx ] || "$PY" bench/export_models.py --out /tmp/m 2>&1 | grep -E "exported|references|Error" || failed+=(models)
fi
if has checks; then
  step from_torch and onnxruntime checks
  "$PY" tests/gpu/python_gpu_checks.py --out "$OUT" --models-dir /tmp/m 2>&1 | tee "$OUT/python_gpu_checks.log" | tail -15
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(checks)
fi
if has bench; then
  step python overhead benchmark
  "$PY" bench/python_overhead.py --out "$OUT" 2>&1 | tail -5
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(bench)
fi
if ((${#failed[@]})); then echo "python_gpu: FAILED: ${failed[*]} (logs in $OUT)"; exit 1; fi
echo "python_gpu: all steps passed"
