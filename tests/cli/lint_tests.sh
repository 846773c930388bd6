#!/usr/bin/env bash
# kiln lint through the binary: text and JSON output, exit codes (1 on an error finding), --help.
# usage: lint_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"

CHECK_EXACT_RC=1
source "$ROOT/tests/cli/check_lib.sh"

python3 "$FX/make_lint_models.py" "$W" || { echo "FAIL cannot write the crafted models"; exit 1; }

check help 0 "--fp16" -- "$KILN" lint --help
check help_lists_flags 0 "--backend.*|--shapes" -- "$KILN" lint --help
check top_help 0 "lint" -- "$KILN" --help

# A clean model: no finding, exit 0, in text and JSON.
check clean 0 "tiny_cnn.onnx \(opset [0-9]+, IR version [0-9]+\): no findings" -- "$KILN" lint "$ROOT/models/tiny_cnn.onnx"
check clean_json 0 "^0 0 0 \[\]$" -- bash -c "\"$KILN\" lint \"$ROOT/models/tiny_cnn.onnx\" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); c=j[\"counts\"]; print(c[\"error\"], c[\"warning\"], c[\"info\"], j[\"findings\"])'"

# An error finding: exit 1, the node, the op and the advice.
check custom_op 1 "error \[custom-domain\] node 'flash_attn' \(com.example.flash::FlashAttention\)" -- "$KILN" lint "$W/custom_attention.onnx"
check custom_op_advice 1 "scaled_dot_product_attention on \(batch, heads, seq, head_dim\)" -- "$KILN" lint "$W/custom_attention.onnx"
check custom_op_json 0 "^error custom-domain flash_attn 1$" -- bash -c "\"$KILN\" lint \"$W/custom_attention.onnx\" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); f=j[\"findings\"][0]; print(f[\"severity\"], f[\"check\"], f[\"node\"], j[\"counts\"][\"error\"])'"
check custom_op_json_rc 1 "\"check\": \"custom-domain\"" -- "$KILN" lint "$W/custom_attention.onnx" --json
check opset 1 "uses opset 99; kiln supports opsets up to 23" -- "$KILN" lint "$W/opset99.onnx"

# Warnings only: exit 0, each finding named.
check warnings 0 "0 error\(s\), 3 warning\(s\)" -- "$KILN" lint "$W/warnings.onnx"
check unused_input 0 "warning \[unused-input\] 'steps'" -- "$KILN" lint "$W/warnings.onnx"
check frozen_dim 0 "constant shape \[1,-1\]: the leading dim is fixed at 1 while 'x' has the dynamic leading dim 'batch'" -- "$KILN" lint "$W/warnings.onnx"
check unnamed_dim 0 "warning \[unnamed-dim\] 'z'" -- "$KILN" lint "$W/warnings.onnx"
check warnings_json 0 "^\['frozen-dim', 'unnamed-dim', 'unused-input'\]$" -- bash -c "\"$KILN\" lint \"$W/warnings.onnx\" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(sorted(f[\"check\"] for f in j[\"findings\"] if f[\"severity\"] == \"warning\"))'"

# f16 risks only when --fp16 is planned; the finding names the node to keep in f32.
check no_fp16 0 "no findings" -- "$KILN" lint "$W/big_constant.onnx"
check fp16 0 "warning \[f16-range\] node 'scale_up' \(Mul\)" -- "$KILN" lint "$W/big_constant.onnx" --fp16
check fp16_advice 0 "--fp32-layers scale_up" -- "$KILN" lint "$W/big_constant.onnx" --fp16

# CPU fallbacks: predicted in a kiln built with CUDA; otherwise said to need one (not a finding).
cuda_probe=$("$KILN" lint "$W/det.onnx" --backend cuda 2>&1)
if grep -q "needs a kiln built with the CUDA backend" <<<"$cuda_probe"; then
  check fallback_needs_cuda 0 "not checked:" -- "$KILN" lint "$W/det.onnx" --backend cuda
else
  check fallback 0 "warning \[cpu-fallback\] node 'determinant' \(Det\)" -- "$KILN" lint "$W/det.onnx" --backend cuda
fi
check fallback_cpu 0 "no findings" -- "$KILN" lint "$W/det.onnx" --backend cpu
check shapes_flag 0 "no findings" -- "$KILN" lint "$ROOT/models/tiny_cnn.onnx" --shapes image:2x3x32x32

# If: lint says whether the condition is fixed at build; inspect says what became of the If, in the model and in
# the engine built from it; the engine computes the branch the condition picks.
check if_const_lint 0 "^info \[if-static\] node 'pick' \(If\)$" -- "$KILN" lint "$W/if_const.onnx"
check if_const_lint_text 0 "its condition 'cond' is a constant.*kiln folds the If at build" -- "$KILN" lint "$W/if_const.onnx"
check if_data_lint 0 "^warning \[if-data-dependent\] node 'pick' \(If\)$" -- "$KILN" lint "$W/if_data.onnx"
check if_data_lint_text 0 "its condition 'flag' depends on the values of 'flag'" -- "$KILN" lint "$W/if_data.onnx"
check if_const_inspect_count 0 "^  control flow: 1 node\(s\)$" -- "$KILN" inspect "$W/if_const.onnx"
check if_const_inspect 0 "If 'pick': folded: the condition 'cond' is fixed at build .*only its then_branch was compiled" -- "$KILN" inspect "$W/if_const.onnx"
check if_data_inspect 0 "If 'pick': data-dependent: the condition 'flag' is known only at run time" -- "$KILN" inspect "$W/if_data.onnx"
check if_shape_inspect 0 "If 'pick': shape-decided: the condition 'big' comes from input shapes .*nothing read back" -- "$KILN" inspect "$W/if_shape.onnx"
check if_shape_lint 0 "^info \[if-static\] node 'pick' \(If\)$" -- "$KILN" lint "$W/if_shape.onnx"
check no_control_flow 0 "^0$" -- bash -c "\"$KILN\" inspect \"$ROOT/models/tiny_cnn.onnx\" | grep -c 'control flow' || true"
check if_const_build 0 "" -- "$KILN" build "$W/if_const.onnx" -o "$W/if_const.kiln" --backend cpu -q
check if_const_engine 0 "^If pick folded then_branch cond 0$" -- bash -c "\"$KILN\" inspect \"$W/if_const.kiln\" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); c=j[\"control_flow\"][0]; print(c[\"op\"], c[\"node\"], c[\"case\"], c[\"branch\"], c[\"decided_by\"], j[\"ops\"].get(\"If\", 0))'"
check if_data_build 0 "" -- "$KILN" build "$W/if_data.onnx" -o "$W/if_data.kiln" --backend cpu -q
check if_data_engine 0 "If 'pick': data-dependent: .*runs on the CPU backend with the taken branch each call" -- "$KILN" inspect "$W/if_data.kiln"
# On the CUDA backend the If reads its condition back and its branches' nodes are placed like any others.
if ! grep -q "needs a kiln built with the CUDA backend" <<<"$cuda_probe"; then
  check if_data_placement 0 "control flow: pick \(If\): data-dependent condition: reads one value back" -- "$KILN" inspect "$W/if_data.onnx" --placement
  check if_shape_placement 0 "control flow: pick \(If\): condition known on the host" -- "$KILN" inspect "$W/if_shape.onnx" --placement --shapes x:4x3
  check if_data_placement_json 0 "^2 1 0 \['flag'\] \['pick'\]$" -- bash -c "\"$KILN\" inspect \"$W/if_data.onnx\" --placement --json | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"placement\"]; print(p[\"gpu\"], p[\"control_flow\"], p[\"cpu_fallback\"], [r[\"value\"] for r in p[\"read_backs\"]], [c[\"node\"] for c in p[\"control_flow_nodes\"]])'"
fi
/usr/bin/python3 -c "
import numpy as np, sys
np.save(sys.argv[1] + '/x.npy', np.array([[-1, 2, -3], [4, -5, 6]], np.float32))
np.save(sys.argv[1] + '/flag_true.npy', np.array(True)); np.save(sys.argv[1] + '/flag_false.npy', np.array(False))" "$W"
for f in true false; do
  mkdir -p "$W/if_$f"
  "$KILN" run "$W/if_data.kiln" --input x="$W/x.npy" --input flag="$W/flag_$f.npy" --output-dir "$W/if_$f" -q >/dev/null 2>&1
done
check if_data_runs_branch 0 "^\[0.0, 2.0, 0.0, 4.0, 0.0, 6.0\] \[1.0, -2.0, 3.0, -4.0, 5.0, -6.0\]$" -- /usr/bin/python3 -c "import numpy as np; print(np.load('$W/if_true/y.npy').ravel().tolist(), np.load('$W/if_false/y.npy').ravel().tolist())"

# Not a model, bad flags: a clean error naming the file, never a crash.
check not_onnx 1 "random_bytes.onnx.*not an ONNX model|random_bytes.onnx.*no graph" -- "$KILN" lint "$FX/random_bytes.onnx"
check empty 1 "empty.onnx.*empty" -- "$KILN" lint "$FX/empty.onnx"
check missing 1 "nope.onnx" -- "$KILN" lint "$W/nope.onnx"
check bad_backend 2 "--backend must be auto, cpu or cuda" -- "$KILN" lint "$ROOT/models/tiny_cnn.onnx" --backend tpu
check bad_shapes 2 "--shapes" -- "$KILN" lint "$ROOT/models/tiny_cnn.onnx" --shapes image

echo "lint CLI tests: $pass passed, $fail failed"
[ $fail = 0 ]
