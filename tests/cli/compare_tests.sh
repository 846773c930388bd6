#!/usr/bin/env bash
# kiln compare through the real binary: passes on the shipped models, catches errors injected into a saved
# reference (by output and index) and into one layer's weights (--layerwise names the layer), exit codes 0/1/2.
# usage: compare_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"
PY=${KILN_TEST_PYTHON:-/usr/bin/python3}

CHECK_EXACT_RC=1
source "$ROOT/tests/cli/check_lib.sh"

CNN="$ROOT/models/tiny_cnn.onnx" ATT="$ROOT/models/tiny_attention.onnx"
CNN_SHAPES=(--shapes image:1x3x32x32,2x3x32x32,4x3x32x32)
check help 0 "--layerwise.*|--reference-precision" -- "$KILN" compare --help
check help_rule 0 "atol \+ rtol" -- "$KILN" compare --help

# The shipped models pass on the CPU backend, at every profile shape and random ones, in f32 and f64.
check cnn_pass 0 "PASS: 3 output\(s\) at 3 shape\(s\)" -- "$KILN" compare "$CNN" --backend cpu -q "${CNN_SHAPES[@]}"
check cnn_f64_random 0 "random 1: image \[[1-4],3,32,32\]" -- \
  "$KILN" compare "$CNN" --backend cpu -q "${CNN_SHAPES[@]}" --reference-precision f64 --random-shapes 2 --seed 5
check attention_pass 0 "profile 0 max: tokens \[4,16,32\]" -- \
  "$KILN" compare "$ATT" --backend cpu -q --shapes tokens:1x1x32,2x8x32,4x16x32 --reference-precision f64 --random-shapes 2
check attention_layerwise 0 "layers: [0-9]+ compared, 0 over tolerance" -- \
  "$KILN" compare "$ATT" --backend cpu -q --shapes tokens:1x4x32,2x8x32,2x8x32 --layerwise
# The rule is the user's: a zero tolerance against the f64 reference fails the f32 engine (exit 1).
check zero_tolerance 1 "FAIL probs" -- "$KILN" compare "$CNN" --backend cpu -q "${CNN_SHAPES[@]}" --reference-precision f64 --atol 0 --rtol 0
check rule_stated 0 "rule: +\|engine - ref\| <= 0.5 \+ 0 \* \|ref\| for every element, and cosine similarity >= 0.9" -- \
  "$KILN" compare "$CNN" --backend cpu -q --atol 0.5 --rtol 0 --cosine 0.9
# An engine file, and its profile's shapes.
"$KILN" build "$CNN" -o "$W/cnn.kiln" --backend cpu -q "${CNN_SHAPES[@]}" >/dev/null
check engine_file 0 "profile 0 min/opt/max|profile 0 opt: image \[2,3,32,32\]" -- "$KILN" compare "$CNN" --engine "$W/cnn.kiln"
check engine_json 0 "^3 True$" -- sh -c "\"$KILN\" compare \"$CNN\" --engine \"$W/cnn.kiln\" --json | $PY -c 'import json,sys; r=json.load(sys.stdin); print(len(r[\"cases\"]), r[\"pass\"])'"

# Bad usage: exit 2 and a message that says what to do.
check engine_and_build_flag 2 "--fp16 is a build flag" -- "$KILN" compare "$CNN" --engine "$W/cnn.kiln" --fp16
check bad_reference_precision 2 "f32 or f64" -- "$KILN" compare "$CNN" --backend cpu --reference-precision f16
check missing_model 2 "does not exist" -- "$KILN" compare "$W/nope.onnx" --backend cpu
check missing_reference 2 "does not exist" -- "$KILN" compare "$CNN" --backend cpu --reference "$W/nope"
check layerwise_needs_cpu_reference 2 "--layerwise needs" -- "$KILN" compare "$CNN" --backend cpu --reference "$W" --layerwise

# --layerwise: the engine's model and the reference model differ in conv2's bias; the first layer that
# diverges is the one that computes conv2 (fused with its Add and Relu), and the outputs fail (exit 1).
"$PY" "$FX/perturb_initializer.py" "$CNN" "$W/cnn_conv2_changed.onnx" c2_b 0.05
check layerwise_names_layer 1 "first divergence: node 'relu2' \(Relu\) -> 'r2' \[engine: FusedConv 'conv2', fused with .*'conv2' \(Conv\)" -- \
  "$KILN" compare "$CNN" --reference-model "$W/cnn_conv2_changed.onnx" --backend cpu -q "${CNN_SHAPES[@]}" --layerwise
check layerwise_json 0 "^relu2$" -- sh -c "\"$KILN\" compare \"$CNN\" --reference-model \"$W/cnn_conv2_changed.onnx\" --backend cpu -q --layerwise --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"cases\"][0][\"first_divergence\"])'"
# A change after every compared layer but the last shows there only: conv1's bias first diverges at relu1.
"$PY" "$FX/perturb_initializer.py" "$CNN" "$W/cnn_conv1_changed.onnx" c1_b 0.05
check layerwise_earlier_layer 1 "first divergence: node 'relu1'" -- \
  "$KILN" compare "$CNN" --reference-model "$W/cnn_conv1_changed.onnx" --backend cpu -q --layerwise

# Saved references: kiln run writes the outputs of a known input; numpy perturbs one element.
if "$PY" -c "import numpy" 2>/dev/null; then
  mkdir -p "$W/ref"
  cp "$ROOT/models/tiny_cnn.input.npy" "$W/ref/image.npy"
  "$KILN" run "$CNN" --backend cpu -q --input image="$W/ref/image.npy" --output-dir "$W/ref" >/dev/null
  check reference_dir_pass 0 "PASS probs \[3,10\]" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/ref"
  "$PY" - "$W" <<'EOF'
import struct, sys
import numpy as np
w = sys.argv[1]
image = np.load(w + "/ref/image.npy")
probs = np.load(w + "/ref/probs.npy")
probs[1, 7] += 0.01
np.save(w + "/ref/probs.npy", probs)
np.savez(w + "/ref.npz", image=image, probs=probs)
np.savez_compressed(w + "/ref_compressed.npz", image=image, probs=probs)
# Relu and MaxPool drop a NaN input; an image at 3e38 overflows the convolutions to Inf, the softmax to NaN.
huge_image = image.copy()
huge_image[2] = 3e38
np.save(w + "/huge_image.npy", huge_image)
# An ONNX test data set: TensorProto = dims (1), data_type (2), name (8), raw_data (9), encoded by hand.
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)
def ld(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data
def tensor_pb(name, a):
    body = b"".join(varint(1 << 3) + varint(d) for d in a.shape) + varint(2 << 3) + varint(1)
    return body + ld(8, name.encode()) + ld(9, np.ascontiguousarray(a, dtype="<f4").tobytes())
import os
os.makedirs(w + "/test_data_set_0", exist_ok=True)
open(w + "/test_data_set_0/input_0.pb", "wb").write(tensor_pb("image", image))
open(w + "/test_data_set_0/output_0.pb", "wb").write(tensor_pb("probs", probs))
EOF
  check reference_dir_perturbed 1 "FAIL probs \[3,10\] .*over 1/30 .*worst \[1,7\]" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/ref"
  check reference_npz 1 "FAIL probs .*worst \[1,7\]" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/ref.npz"
  check reference_npz_compressed 2 "savez_compressed" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/ref_compressed.npz"
  check reference_pb 1 "ONNX test data set.*|worst \[1,7\]" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/test_data_set_0"
  check reference_pb_worst 1 "worst \[1,7\]" -- "$KILN" compare "$CNN" --backend cpu -q --reference "$W/test_data_set_0"
  # NaN in the engine's output where the reference is finite: a mismatch, counted and located.
  check nonfinite 1 "FAIL probs \[3,10\] .*over 11/30 \(10 non-finite\) +worst \[2,[0-9]\] -?nan vs" -- \
    "$KILN" compare "$CNN" --backend cpu -q --reference "$W/ref" --input image="$W/huge_image.npy"
else
  echo "skip: saved-reference checks ($PY has no numpy)"
fi

echo "compare CLI tests: $pass passed, $fail failed"
[ $fail = 0 ]
