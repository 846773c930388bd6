#!/usr/bin/env bash
# The f16 conv layout side by side on one GPU: each model built for batch 1 (profile 1,1,4) and for batch 4
# (profile 1,4,8) with --conv-layout nchw and nhwc (auto is nhwc), timed by kiln bench at batch 1 and 4. This is the
# measurement behind ConvLayoutChoice::kAuto (include/kiln/builder.h).
#   bench/conv_layout_ab.sh          (KILN_AB_MODELS="resnet50" narrows it; expects build/bin/kiln with CUDA)
# Writes $OUT/conv_layout_ab.json (one row per build and batch) and prints a table.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin"
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
K=build/bin/kiln
W=/tmp/kiln-ab
mkdir -p "$OUT" "$W" /tmp/m
models=${KILN_AB_MODELS:-resnet50}
for m in $models; do
  [ -f /tmp/m/$m.onnx ] || python3 bench/export_models.py --out /tmp/m --models "$m" 2>&1 | grep -E "exported|Error"
done
rows=()
for m in $models; do
  for opt in 1 4; do
    max=$(( opt == 1 ? 4 : 8 ))
    for layout in nchw nhwc; do
      e=$W/${m}_opt${opt}_$layout.kiln
      flags=(); [ $layout != auto ] && flags=(--conv-layout $layout)
      $K build /tmp/m/$m.onnx -o "$e" --backend cuda --fp16 -q "${flags[@]}" \
        --shapes "image:1x3x224x224,${opt}x3x224x224,${max}x3x224x224" 2>&1 | grep -E "error|NCHW|channels" | head -2
      for b in 1 4; do
        ms=$($K bench "$e" --json -q --iters 200 --warmup 20 --shapes image:${b}x3x224x224 |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"]["median"])')
        echo "$m opt$opt $layout batch $b: $ms ms"
        rows+=("{\"model\": \"$m\", \"profile_opt\": $opt, \"layout\": \"$layout\", \"batch\": $b, \"median_ms\": ${ms:-null}}")
      done
    done
  done
done
{ echo "["; (IFS=,; echo "${rows[*]}"); echo "]"; } >"$OUT/conv_layout_ab.json"
