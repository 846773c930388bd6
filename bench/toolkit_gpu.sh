#!/usr/bin/env bash
# kiln compare and kiln bench --sweep --html on the benchmark models, on the GPU machine (issue: validation toolkit):
#   bench/toolkit_gpu.sh            (KILN_TOOLKIT_MODELS="resnet50 vit_b_16 bert_base gpt2" narrows it)
# Per model: the engine against kiln's CPU reference at every profile shape (min/opt/max), in f32 and f16
# (--json and --html), then an f16 engine timed at every profile shape (--sweep --json --html). Expects build/bin/kiln
# built with CUDA; exports the models with bench/export_models.py when /tmp/m lacks them. Files go to $OUT;
# bench/toolkit_summary.py turns them into bench/results/toolkit.{json,md}.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin" PYTHONUNBUFFERED=1
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
K=build/bin/kiln
mkdir -p "$OUT" /tmp/m /tmp/kiln-toolkit
models=${KILN_TOOLKIT_MODELS:-resnet50 vit_b_16 bert_base gpt2}
# Batch 1..8 (sequence 128): the CPU reference runs every shape, so the ranges stay small.
declare -A dims=([resnet50]="image:3x224x224" [vit_b_16]="image:3x224x224"
                 [bert_base]="input_ids:128 attention_mask:128" [gpt2]="input_ids:128")
missing=""
for m in $models; do [ -f /tmp/m/$m.onnx ] || missing+="${missing:+,}$m"; done
[ -n "$missing" ] && python3 bench/export_models.py --out /tmp/m --models "$missing" 2>&1 | grep -E "exported|Error" | head
for m in $models; do
  shapes=(); for s in ${dims[$m]}; do shapes+=(--shapes "${s%%:*}:1x${s#*:},4x${s#*:},8x${s#*:}"); done
  for p in f32 f16; do
    flag=(); [ $p = f16 ] && flag=(--fp16)
    echo "== $(date +%T) $m compare $p"
    timeout ${KILN_STEP_TIMEOUT:-240} $K compare /tmp/m/$m.onnx --backend cuda "${flag[@]}" "${shapes[@]}" -q --json \
      --html "$OUT/compare_${m}_$p.html" >"$OUT/compare_${m}_$p.json" 2>"$OUT/compare_${m}_$p.err"
    echo "rc=$?"; tail -2 "$OUT/compare_${m}_$p.err"
  done
  echo "== $(date +%T) $m bench --sweep f16"
  $K build /tmp/m/$m.onnx -o /tmp/kiln-toolkit/$m.kiln --backend cuda --fp16 -q "${shapes[@]}" 2>&1 | tail -2
  timeout ${KILN_STEP_TIMEOUT:-240} $K bench /tmp/kiln-toolkit/$m.kiln --sweep --json --iters 200 --warmup 20 -q \
    --html "$OUT/sweep_${m}_f16.html" >"$OUT/sweep_${m}_f16.json" 2>"$OUT/sweep_${m}_f16.err"
  echo "rc=$?"; tail -2 "$OUT/sweep_${m}_f16.err"
done
