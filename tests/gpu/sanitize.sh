#!/usr/bin/env bash
# compute-sanitizer over the GPU tests and the soak, on the GPU machine (kiln_gpu_tests and kiln_soak built):
#   tests/gpu/sanitize.sh [BUILD_DIR]        (default build/; logs and sanitize.md into $OUT or /tmp/kiln-out)
# Which tests (a subset, so all four runs fit one device call of ~5 minutes after the build):
#   memcheck  — the runtime (arenas, CUDA graphs, enqueue, shared weights, caps), the shipped models, and the
#               kernels of kiln's own that index by hand (attention, softmax, norms, reduce, pointwise chains,
#               slice/gather/scatter/concat/split/transpose/pad/resize/pool); timing-sensitive tests left out;
#   racecheck — the kernels that share memory between threads (attention, softmax, norms, reduce, transpose,
#               pool), then kiln_soak with 4 threads for KILN_SANITIZE_SOAK_S (half the limit) seconds;
#   synccheck — the same kernels as racecheck.
# Each run has a time limit (KILN_SANITIZE_LIMIT_S, default 110 s each); one that runs out is reported as
# "timed out" with the errors printed so far. KILN_SANITIZE_RUNS (e.g. "memcheck_tests racecheck_soak") picks
# runs by name, so a long run can have a device call to itself. Exit 1 when any run reports an error or a test
# fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
CS=${COMPUTE_SANITIZER:-/usr/local/cuda/bin/compute-sanitizer}
[ -x "$CS" ] || CS=$(command -v compute-sanitizer || true)
if [ -z "$CS" ]; then echo "sanitize: compute-sanitizer not found" >&2; exit 1; fi
for t in "$B/tests/kiln_gpu_tests" "$B/tests/kiln_soak"; do
  [ -x "$t" ] || { echo "sanitize: $t not built (cmake --build $B --target kiln_gpu_tests kiln_soak)" >&2; exit 1; }
done
LIMIT=${KILN_SANITIZE_LIMIT_S:-110}

SLOW='-*Perf*:GpuRuntime.ProfileLayerTimesAreGpuTimeNotHostOverhead:GpuRuntime.EnqueueDoesNotWaitForTheGpu:GpuOutOfMemory.*'
MEM='GpuRuntime.*:GpuModels.*:GpuAttention.*:GpuAttentionMaskTiles.*:GpuSoftmax.*:GpuLayerNorm.*:GpuFusedAddLayerNorm.*'
MEM+=':GpuReduce.*:GpuPointwiseChain.*:GpuSlice.*:GpuGather*:GpuScatter*:GpuConcat.*:GpuSplit.*:GpuTranspose.*'
MEM+=':GpuPad.*:GpuResize.*:GpuPool.*:GpuViews.*'
SHARED='GpuAttention.*:GpuAttentionMaskTiles.*:GpuSoftmax.*:GpuLayerNorm.*:GpuFusedAddLayerNorm.*:GpuReduce.*'
SHARED+=':GpuTranspose.*:GpuPool.*:GpuRmsNorm.*:GpuInstanceNorm.*'

# A caller may narrow a run to what fits its time (the note then says which): KILN_SANITIZE_MEM_FILTER,
# KILN_SANITIZE_SHARED_FILTER replace the gtest filters above.
MEM=${KILN_SANITIZE_MEM_FILTER:-$MEM}
SHARED=${KILN_SANITIZE_SHARED_FILTER:-$SHARED}

summary="$OUT/sanitize.md"
echo "| run | sanitizer errors | tests | time s | note |" >"$summary"
echo "|---|---|---|---|---|" >>"$summary"
failed=0

# run NAME TOOL CMD...: one sanitizer run, its log in $OUT/sanitize_NAME.log, one row in the summary.
run() {
  local name=$1 tool=$2; shift 2
  [ -n "${KILN_SANITIZE_RUNS:-}" ] && [[ " $KILN_SANITIZE_RUNS " != *" $name "* ]] && return 0
  local log="$OUT/sanitize_$name.log" t0=$SECONDS
  echo "== $(date +%T) $tool: $name"
  # stdbuf: the tests' stdout is line-buffered (stdbuf's preload passes to the child), so a run cut short still
  # shows which tests finished.
  timeout --signal=INT --kill-after=15 "$LIMIT" stdbuf -oL -eL "$CS" --tool "$tool" --print-limit 50 --error-exitcode 99 "$@" \
    >"$log" 2>&1
  local rc=$? note=""
  local errors
  # memcheck and synccheck end with "ERROR SUMMARY: N errors", racecheck with "RACECHECK SUMMARY: H hazards
  # displayed (N errors, W warnings)".
  errors=$(grep -oE "ERROR SUMMARY: [0-9]+ error|RACECHECK SUMMARY: .*\([0-9]+ error" "$log" | tail -1 | grep -oE "[0-9]+ error" | grep -oE "[0-9]+")
  if [ -z "$errors" ]; then
    # No summary: cut short. Count the reports printed so far (each starts a "=========" block with a kind).
    errors=$(grep -cE "^========= (Invalid|Race|Barrier|Error|Program hit|Malloc|Cuda API error|Out-of-range|Uninitialized)" "$log")
    note="timed out after ${LIMIT} s (errors so far)"
  fi
  local tests
  tests=$(grep -oE "\[  PASSED  \] [0-9]+ test|^[0-9]+ FAILED TEST" "$log" | tr '\n' ' ')
  [ -z "$tests" ] && tests="$(grep -cE '^\[ +OK \]' "$log") finished"
  grep -q "FAILED TEST" "$log" && { note="$note; gtest failures: $(grep -E '^\[  FAILED  \]' "$log" | head -5 | sed 's/\[  FAILED  \] //' | tr '\n' ' ')"; failed=1; }
  [ "$rc" -ne 0 ] && [ "$errors" = 0 ] && [ -z "$note" ] && note="exit $rc"
  [ "$errors" != 0 ] && failed=1
  echo "| $name | $errors | ${tests:-see log} | $((SECONDS - t0)) | ${note# ; } |" >>"$summary"
  echo "   $tool $name: $errors errors, ${tests:-?} ($((SECONDS - t0)) s) ${note}"
  grep -E "^========= (Invalid|Race|Barrier|Error)" "$log" | sort | uniq -c | sort -rn | head -8
}

G="$B/tests/kiln_gpu_tests"
run memcheck_tests memcheck --leak-check full $G --gtest_filter="$MEM:$SLOW"
run racecheck_tests racecheck $G --gtest_filter="$SHARED:$SLOW"
run synccheck_tests synccheck $G --gtest_filter="$SHARED:$SLOW"
# The soak's own memory rule is off: the sanitizer's allocations move the device figures.
mkdir -p "$OUT/soak_racecheck"
# Half the run's limit soaks; the rest is for building the engine (tactic timing) under the sanitizer.
# No tactic timing at build: under racecheck, timing every candidate kernel took longer than a whole run (320 s).
run racecheck_soak racecheck "$B/tests/kiln_soak" --threads 4 --seconds "${KILN_SANITIZE_SOAK_S:-$((LIMIT / 2))}" --sample-s 5 \
  --no-memory-check --no-tactic-timing --shapes 4 --out "$OUT/soak_racecheck"
cat "$summary"
exit $failed
