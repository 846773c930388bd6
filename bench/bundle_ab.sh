#!/usr/bin/env bash
# A bundle against one engine, side by side on one GPU: each model built f16 as one engine for batch 1..32
# (opt 8) and as a bundle of {1..4 opt 1, 5..32 opt 32} (kiln build --bundle), both timed by kiln bench at batch 1,
# 4, 5 and 32, in alternation (engine, bundle, engine, bundle) so drift hits both. Build time and file size too.
#   bench/bundle_ab.sh          (KILN_AB_MODELS="resnet50 vit_b_16" picks models; expects build/bin/kiln with CUDA)
# Writes $OUT/bundle_ab.json (one row per model, build and batch) and $OUT/bundle_ab.md, and prints the table.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin"
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
K=build/bin/kiln
W=/tmp/kiln-bundle-ab
mkdir -p "$OUT" "$W" /tmp/m
models=${KILN_AB_MODELS:-resnet50}
declare -A dims=([resnet50]="image:3x224x224" [vit_b_16]="image:3x224x224" [bert_base]="input_ids:128 attention_mask:128")
shapes() {  # shapes MODEL MIN,OPT,MAX -> --shapes flags
  local m=$1 out=() s lo opt hi; IFS=, read -r lo opt hi <<<"$2"
  for s in ${dims[$m]}; do out+=(--shapes "${s%%:*}:${lo}x${s#*:},${opt}x${s#*:},${hi}x${s#*:}"); done
  echo "${out[@]}"
}
rows=()
for m in $models; do
  [ -f /tmp/m/$m.onnx ] || python3 bench/export_models.py --out /tmp/m --models "$m" 2>&1 | grep -E "exported|Error"
  t0=$SECONDS
  $K build /tmp/m/$m.onnx -o $W/$m.one.kiln --backend cuda --fp16 -q $(shapes $m 1,8,32) 2>&1 | grep -E "error" | head -3
  t_one=$((SECONDS - t0)); t0=$SECONDS
  $K build /tmp/m/$m.onnx -o $W/$m.bundle.kiln --backend cuda --fp16 -q --bundle $(shapes $m 1,1,4) $(shapes $m 5,32,32) 2>&1 |
    grep -E "error" | head -3
  t_bundle=$((SECONDS - t0))
  for b in 1 4 5 32; do
    run=(); for s in ${dims[$m]}; do run+=(--shapes "${s%%:*}:${b}x${s#*:}"); done
    for kind in one bundle one bundle; do
      ms=$($K bench $W/$m.$kind.kiln --json -q --iters 300 --warmup 30 "${run[@]}" |
           python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["latency_ms"]["median"], j["execution"]["bundle_member"])')
      echo "$m batch $b $kind: $ms"
      rows+=("{\"model\": \"$m\", \"build\": \"$kind\", \"batch\": $b, \"median_ms\": ${ms%% *}, \"member\": ${ms##* }}")
    done
  done
  rows+=("{\"model\": \"$m\", \"build_s\": {\"one\": $t_one, \"bundle\": $t_bundle}, \"file_bytes\": {\"one\": $(stat -c %s $W/$m.one.kiln), \"bundle\": $(stat -c %s $W/$m.bundle.kiln)}}")
done
{ echo "["; (IFS=,; echo "${rows[*]}"); echo "]"; } >"$OUT/bundle_ab.json"
python3 - "$OUT/bundle_ab.json" "$OUT/bundle_ab.md" <<'PY'
import json, statistics, sys
rows = json.load(open(sys.argv[1]))
out = ["| model | batch | one engine 1..32 ms | bundle ms (member) | engine / bundle |", "|---|---|---|---|---|"]
for m in dict.fromkeys(r["model"] for r in rows):
    for b in sorted({r["batch"] for r in rows if r["model"] == m and "batch" in r}):
        one = [r["median_ms"] for r in rows if r["model"] == m and r.get("batch") == b and r["build"] == "one"]
        bun = [r for r in rows if r["model"] == m and r.get("batch") == b and r["build"] == "bundle"]
        o, u = min(one), min(r["median_ms"] for r in bun)
        out.append(f"| {m} | {b} | {o:.3f} | {u:.3f} ({bun[0]['member']}) | {o / u:.2f}x |")
    meta = next(r for r in rows if r["model"] == m and "build_s" in r)
    out.append(f"| {m} | build s / file MB | {meta['build_s']['one']} / {meta['file_bytes']['one'] / 1e6:.1f} | "
               f"{meta['build_s']['bundle']} / {meta['file_bytes']['bundle'] / 1e6:.1f} | |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
