#!/usr/bin/env bash
# kiln extract on the shipped models: cuts, the check, errors, and the written parts built and run with kiln.
# usage: extract_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"

source "$ROOT/tests/cli/check_lib.sh"
file_check() {  # file_check NAME TEST_ARGS...
  local name=$1; shift
  if test "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name (test $*)"; fi
}

CNN="$ROOT/models/tiny_cnn.onnx" ATT="$ROOT/models/tiny_attention.onnx" GATED="$ROOT/models/gated_encoder.onnx"

check help 0 "extract" -- "$KILN" --help
check extract_help 0 "--no-check" -- "$KILN" extract --help
check extract_help_inputs 0 "--inputs" -- "$KILN" extract --help
check list_values 0 "r1 +f32\[batch,16,32,32\] +relu1 \(Relu\)" -- "$KILN" extract "$CNN" --list-values
check list_values_json 0 "\"producer\": \"softmax\"" -- "$KILN" extract "$ATT" --list-values --json

# A cut in the middle of tiny_cnn: checked against the whole model, then built and run like any model.
check cnn_mid 0 "the part matches the model" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/mid.onnx" --shapes image:2x3x32x32
check cnn_mid_nodes 0 "nodes: conv2, residual, relu2$" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/mid.onnx" --no-check
check cnn_mid_inspect 0 "r1 f32 \[batch,16,32,32\]" -- "$KILN" inspect "$W/mid.onnx"
check cnn_mid_inspect_params 0 "2 initializers" -- "$KILN" inspect "$W/mid.onnx"
check cnn_mid_run 0 "output 'r2': f32\[2,16,32,32\]" -- "$KILN" run "$W/mid.onnx" --backend cpu --shapes r1:2x16x32x32
check cnn_mid_build 0 "built .*mid.kiln" -- "$KILN" build "$W/mid.onnx" -o "$W/mid.kiln" --backend cpu --shapes r1:1x16x32x32,2x16x32x32,4x16x32x32
check cnn_mid_run_engine 0 "output 'r2': f32\[2,16,32,32\]" -- "$KILN" run "$W/mid.kiln"
check no_check 0 "" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/mid2.onnx" --no-check
check no_check_silent 1 "" -- grep -q "check on the CPU" <<<"$("$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/mid2.onnx" --no-check 2>&1)"

# The whole model cut at its own I/O reproduces the shipped reference output (an independent float64 numpy).
check cnn_whole 0 "matches" -- "$KILN" extract "$CNN" --inputs image --outputs probs -o "$W/whole.onnx"
check cnn_whole_run 0 "wrote 1 output" -- "$KILN" run "$W/whole.onnx" --backend cpu --input image="$ROOT/models/tiny_cnn.input.npy" --output-dir "$W/whole_out"
if /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  check cnn_whole_reference 0 "^ok" -- /usr/bin/python3 -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape and np.abs(a - b).max() < 1e-4, (a.shape, b.shape, np.abs(a - b).max())
print("ok")' "$W/whole_out/probs.npy" "$ROOT/models/tiny_cnn.expected.npy"
fi

# tiny_attention: the residual reads the model input, so a cut at ln alone is not closed.
check att_not_closed 1 "not closed.*'tokens' f32\[batch,seq,32\].*read by node 'residual' \(Add\)" -- "$KILN" extract "$ATT" --inputs ln --outputs res -o "$W/att.onnx"
check att_not_closed_hint 1 "--inputs ln,tokens" -- "$KILN" extract "$ATT" --inputs ln --outputs res -o "$W/att.onnx"
file_check att_not_closed_no_file ! -e "$W/att.onnx"
check att_closed 0 "\"match\": true" -- "$KILN" extract "$ATT" --inputs ln,tokens --outputs res -o "$W/att.onnx" --shapes tokens:2x7x32 --json
check att_closed_run 0 "output 'res': f32\[2,7,32\]" -- "$KILN" run "$W/att.onnx" --backend cpu --shapes ln:2x7x32 --shapes tokens:2x7x32
# Attention's core: values the whole model fuses into one FusedAttention are exposed for the check.
check att_core 0 "ctx \[2,4,6,8\]: max abs error" -- "$KILN" extract "$ATT" --inputs q_t,k_t,v_t --outputs ctx -o "$W/core.onnx" --shapes tokens:2x6x32
check att_core_run 0 "output 'ctx': f32\[2,4,6,8\]" -- "$KILN" run "$W/core.onnx" --backend cpu --shapes q_t:2x4x6x8 --shapes k_t:2x4x8x6 --shapes v_t:2x4x6x8
check att_json_fields 0 "^ok$" -- bash -c "\"$KILN\" extract \"$ATT\" --inputs q_t,k_t,v_t --outputs attn,ctx -o \"$W/core2.onnx\" --json | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j[\"nodes\"] == [\"qk\", \"scale\", \"softmax\", \"av\"], j[\"nodes\"]
assert [i[\"name\"] for i in j[\"inputs\"]] == [\"q_t\", \"k_t\", \"v_t\"] and j[\"initializers\"] == 1, j
c = j[\"check\"]
assert c[\"match\"] and [o[\"name\"] for o in c[\"outputs\"]] == [\"attn\", \"ctx\"], c
assert all(o[\"max_abs_error\"] <= 1e-5 and o[\"mismatches\"] == 0 for o in c[\"outputs\"]), c
print(\"ok\")'"

# Names: unknown ones get near matches; a body's value is no place to cut; unused inputs warn (or fail).
check unknown_name 1 "'r1x' is not a value of the model; nearest value names: 'r1'" -- "$KILN" extract "$CNN" --inputs r1x --outputs r2 -o "$W/x.onnx"
check unused_input 0 "warning: --inputs 'c1': no node needed" -- "$KILN" extract "$CNN" --inputs r1,c1 --outputs r2 -o "$W/unused.onnx" --no-check
check strict_inputs 1 "drop it from --inputs" -- "$KILN" extract "$CNN" --inputs r1,c1 --outputs r2 -o "$W/strict.onnx" --strict-inputs
check body_value 1 "inside the body of node 'route' \(If\)" -- "$KILN" extract "$GATED" --inputs features --outputs detail_out -o "$W/x.onnx"
check output_is_input 1 "in both --inputs and --outputs" -- "$KILN" extract "$CNN" --inputs r1 --outputs r1 -o "$W/x.onnx"
check missing_output_flag 1 "-o PART.onnx" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2
check missing_outputs 1 "--outputs" -- "$KILN" extract "$CNN" --inputs r1 -o "$W/x.onnx"
check shapes_part_input 1 "--shapes names 'r1', which is not an input" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/x.onnx" --shapes r1:1x16x32x32
check shapes_fixed_dim 1 "fixed at 3" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/x.onnx" --shapes image:1x4x32x32
check missing_model 1 "does not exist" -- "$KILN" extract "$W/none.onnx" --inputs a --outputs b -o "$W/x.onnx"
check bad_external 1 "auto, always or never" -- "$KILN" extract "$CNN" --inputs r1 --outputs r2 -o "$W/x.onnx" --external-data sometimes

# External data: the weights go beside the part, referenced by a relative name, so the pair can move.
check output_dir_missing 1 "does the directory exist" -- "$KILN" extract "$CNN" --inputs r1 --outputs probs -o "$W/ext/tail.onnx" --external-data always
mkdir -p "$W/ext"
# conv2's weight (9216 B) goes out; tensors under 1 KiB (biases, the fc layer) stay inline.
check external_always 0 "4 initializers .*1 tensor\(s\) in .*tail.onnx.data" -- "$KILN" extract "$CNN" --inputs r1 --outputs probs -o "$W/ext/tail.onnx" --external-data always
file_check external_file_size -s "$W/ext/tail.onnx.data"
mv "$W/ext" "$W/moved"
check external_run_moved 0 "output 'probs': f32\[3,10\]" -- "$KILN" run "$W/moved/tail.onnx" --backend cpu --shapes r1:3x16x32x32
# A part of a part keeps the source's external data external (kiln's choice for --external-data auto).
check external_auto 0 "1 tensor\(s\) in .*mid.onnx.data" -- "$KILN" extract "$W/moved/tail.onnx" --inputs r1 --outputs r2 -o "$W/moved/mid.onnx" --shapes r1:2x16x32x32
check external_never 0 ", inline\)" -- "$KILN" extract "$W/moved/tail.onnx" --inputs r1 --outputs r2 -o "$W/moved/mid.onnx" --external-data never
file_check external_never_removes_stale ! -e "$W/moved/mid.onnx.data"

# The modular-compilation example (docs/extract.md): the encoder is built with kiln, the data-dependent If
# stays with the caller; a cut at the If keeps the outer values its branches read.
check gated_encoder 0 "nodes: enc_fc1, enc_bias1, enc_relu, enc_fc2, enc_bias2$" -- "$KILN" extract "$GATED" --inputs x --outputs features -o "$W/encoder.onnx" --shapes x:4x16
check gated_encoder_build 0 "built .*encoder.kiln" -- "$KILN" build "$W/encoder.onnx" -o "$W/encoder.kiln" --backend cpu --shapes x:1x16,8x16,64x16
check gated_encoder_run 0 "output 'features': f32\[8,16\]" -- "$KILN" run "$W/encoder.kiln"
check gated_head 0 "out \[5,16\]: max abs error" -- "$KILN" extract "$GATED" --inputs features --outputs out -o "$W/head.onnx" --shapes x:5x16
check gated_head_initializers 0 "2 initializers" -- "$KILN" inspect "$W/head.onnx"
check gated_body_leak 1 "'x' f32\[batch,16\] .*read by node 'enc_fc1' \(MatMul\); needed as 'x' -> .* -> 'features' -> node 'route' \(If\) in its body -> 'out'" -- "$KILN" extract "$GATED" --inputs use_detail --outputs out -o "$W/x.onnx"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
