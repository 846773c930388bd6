#!/usr/bin/env bash
# The CPU code under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): builds kiln with
# -DKILN_SANITIZE=address,undefined and CUDA off in build-sanitize/, then runs, each failing on the first report:
#   1. the CPU tests (ctest -L cpu) except those labelled slow (the ONNX conformance run, ~900 node models: it
#      is covered by the fuzz step's seeds below and runs unsanitized in scripts/test.sh);
#   2. a fixed-seed fuzz run of kiln_fuzz over the ONNX node tests (every node model, KILN_FUZZ_MUTANTS model
#      mutants and KILN_FUZZ_ENGINE_MUTANTS engine-file mutants each, seed 20261206, one process per seed).
# CI (.ci/run) calls it after scripts/test.sh. Environment: KILN_JOBS (default nproc), KILN_SANITIZE_BUILD_DIR,
# KILN_FUZZ_MUTANTS (2), KILN_FUZZ_ENGINE_MUTANTS (1), KILN_FUZZ_SEED (20261206).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KILN_SANITIZE_BUILD_DIR:-build-sanitize}
JOBS=${KILN_JOBS:-$(nproc)}
DATA=/usr/include/onnx/backend/test/data/node

# halt_on_error: the first report fails the test. allocator_may_return_null: a huge host allocation throws
# std::bad_alloc as in a normal build (kiln turns that into an error), instead of ASan aborting on it.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

for d in /opt/torch/.venv/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done
GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
t0=$(date +%s)
step() { echo "== sanitize: $* ($(($(date +%s) - t0)) s)"; }

step "configure + build in $BUILD_DIR (address,undefined; CUDA off)"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # -O1 -g1: sanitizer builds compile faster at -O1, and line tables are all a report's stack needs. No Python
  # module: an ASan-built extension cannot load into an uninstrumented python.
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DKILN_WITH_CUDA=OFF -DKILN_SANITIZE=address,undefined -DKILN_BUILD_PYTHON=OFF --no-warn-unused-cli >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target kiln_tests kiln_fuzz kiln_cli

# TensorAllocate.FailedAllocationIsAnError asks operator new for 2^62 bytes and expects std::bad_alloc; ASan's
# throwing operator new reports out-of-memory and exits instead (allocator_may_return_null covers malloc and
# nothrow new only), so that one test runs in scripts/test.sh alone.
step "CPU tests (ctest -L cpu -LE slow)"
ctest --test-dir "$BUILD_DIR" -L cpu -LE slow -E '^TensorAllocate\.FailedAllocationIsAnError$' --output-on-failure -j "$JOBS"

step "fuzz: ${KILN_FUZZ_MUTANTS:-2} model + ${KILN_FUZZ_ENGINE_MUTANTS:-1} engine mutants per node model, seed ${KILN_FUZZ_SEED:-20261206}"
if [ -d "$DATA" ]; then
  "$BUILD_DIR/tests/kiln_fuzz" --data "$DATA" --mutants "${KILN_FUZZ_MUTANTS:-2}" \
    --engine-mutants "${KILN_FUZZ_ENGINE_MUTANTS:-1}" --seed "${KILN_FUZZ_SEED:-20261206}" --fork
else
  echo "sanitize: $DATA not found (Debian libonnx-testdata); fuzzing the shipped models only" >&2
  "$BUILD_DIR/tests/kiln_fuzz" models/*.onnx --mutants 50 --engine-mutants 20 --seed "${KILN_FUZZ_SEED:-20261206}" --fork
fi
step "clean: no sanitizer report"
