#!/usr/bin/env bash
# Everything one GPU-machine session checks, in one command (the machine starts bare each time):
#   bench/gpu_session.sh [build] [tests] [conformance] [accuracy] [perf] [profile]   (default: build tests
#   conformance accuracy). profile: f16 engines of the four models, `kiln bench --profile` at batch 1 and 32
#   (KILN_PROFILE_MODELS, KILN_BATCHES narrow it; KILN_CONV_LAYOUT=nchw|nhwc forces the conv layout), one file
#   per config in $OUT. KILN_BUILD_TARGETS (e.g. "kiln_gpu_tests kiln_cli") builds only those; KILN_ACCURACY_MODELS
#   narrows the accuracy step, KILN_EXPORT_MODELS the export (gpt2 must be among them).
# The GPU machine's copy of .git can be stale: pass KILN_COMMIT=<hash of the tree sent> so results name it.
# Logs and results go to $OUT (the device tool's output folder) or /tmp/kiln-out.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin" KILN_NO_APT=1 KILN_JOBS=${KILN_JOBS:-16} PYTHONUNBUFFERED=1
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build tests conformance accuracy)
has() { [[ " ${steps[*]} " == *" $1 "* ]]; }
step() { echo "== $(date +%T) $*"; }

if has build; then
  step build
  scripts/setup.sh >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
fi
if has tests; then
  step gpu tests
  timeout ${KILN_TEST_TIMEOUT:-1800} build/tests/kiln_gpu_tests --gtest_brief=1 ${KILN_GTEST_FILTER:+--gtest_filter=$KILN_GTEST_FILTER} \
    >"$OUT/gpu_tests.log" 2>&1
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests ran|Failure|error" "$OUT/gpu_tests.log" | head -60
  step cli tests with the GPU
  tests/cli/run_cli_tests.sh build/bin/kiln . /tmp/kiln-cli >"$OUT/cli_tests.log" 2>&1; echo "cli tests rc=$?"
  tail -5 "$OUT/cli_tests.log"
fi
if has conformance; then
  step onnx node tests on cuda
  data=.onnxdata; [ -d "$data/node" ] || data=/usr/include/onnx/backend/test/data
  build/tests/kiln_conformance --backend cuda --data "$data" \
    --expected tests/conformance/expected_failures.txt --expected tests/conformance/expected_failures_cuda.txt >"$OUT/conformance_cuda.log" 2>&1
  tail -30 "$OUT/conformance_cuda.log"
fi
if has accuracy || has perf || has profile; then
  step export models
  [ -f /tmp/m/gpt2.onnx ] || python3 bench/export_models.py --out /tmp/m ${KILN_EXPORT_MODELS:+--models $KILN_EXPORT_MODELS} 2>&1 |
    grep -E "exported|references|Error"
fi
if has accuracy; then
  step accuracy vs torch
  python3 bench/compare_torch.py --models-dir /tmp/m --kiln build/bin/kiln --precisions ${KILN_PRECISIONS:-f32,f16} --batches ${KILN_BATCHES:-1,7,32} \
    ${KILN_ACCURACY_MODELS:+--models $KILN_ACCURACY_MODELS} --out "$OUT" 2>&1 | tail -40
fi
if has perf; then
  step latency vs torch
  # KILN_PERF_MODELS splits the run over calls (each under the device's 10 minutes); KILN_PERF_MERGE=1 adds
  # to the day's result files instead of rewriting them. $OUT starts empty on the device, so the day's files
  # are taken from bench/results/ (copy the first call's files there before the second call).
  if [ -n "${KILN_PERF_MERGE:-}" ]; then
    for f in bench/results/perf-$(date +%F).json bench/results/perf-$(date +%F).md; do
      [ -f "$f" ] && [ ! -f "$OUT/$(basename "$f")" ] && cp "$f" "$OUT/"
    done
  fi
  python3 bench/bench_latency.py --models-dir /tmp/m --kiln build/bin/kiln --out "$OUT" \
    ${KILN_PERF_MODELS:+--models $KILN_PERF_MODELS} ${KILN_PERF_MERGE:+--merge} \
    --deadline-s ${KILN_PERF_DEADLINE:-540} 2>&1 | tail -60
fi
if has profile; then
  step per-layer profiles
  declare -A dims=([resnet50]="image:3x224x224" [vit_b_16]="image:3x224x224"
                   [bert_base]="input_ids:128 attention_mask:128" [gpt2]="input_ids:512")
  mkdir -p /tmp/kiln-prof
  for m in ${KILN_PROFILE_MODELS:-resnet50 vit_b_16 bert_base gpt2}; do
    shapes=(); for s in ${dims[$m]}; do shapes+=(--shapes "${s%%:*}:1x${s#*:},32x${s#*:},32x${s#*:}"); done
    engine=/tmp/kiln-prof/$m.fp16.kiln
    /usr/bin/time -f "$m build %e s" build/bin/kiln build /tmp/m/$m.onnx -o $engine --backend cuda --fp16 --reduced-precision-io -q \
      ${KILN_CONV_LAYOUT:+--conv-layout $KILN_CONV_LAYOUT} "${shapes[@]}" 2>&1 | tail -3
    batches=${KILN_BATCHES:-1,32}; for b in ${batches//,/ }; do
      run=(); for s in ${dims[$m]}; do run+=(--shapes "${s%%:*}:${b}x${s#*:}"); done
      build/bin/kiln bench $engine "${run[@]}" --profile --top 40 --max-seconds ${KILN_PROFILE_SECONDS:-20} >"$OUT/profile_${m}_b$b.txt" 2>&1
      echo "-- $m b$b"; sed -n '/^latency/p;/execution/p;/^per op type/,/^$/p' "$OUT/profile_${m}_b$b.txt" | head -14
    done
  done
fi
step done
