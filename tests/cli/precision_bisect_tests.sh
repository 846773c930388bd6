#!/usr/bin/env bash
# kiln compare --precision-bisect and kiln build --fp32-layers @FILE through the real binary, on the CPU: a model
# whose layer 'big' overflows f16 fails under --emulate-precision, the search finds {big, scale} (a real failing
# tolerance and a real passing end state), writes them, and kiln build / kiln compare read the file back.
# usage: precision_bisect_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"
PY=${KILN_TEST_PYTHON:-/usr/bin/python3}

CHECK_EXACT_RC=1
source "$ROOT/tests/cli/check_lib.sh"

M="$FX/f16_overflow.onnx" CNN="$ROOT/models/tiny_cnn.onnx"
SH=(--shapes x:1x16,4x16,8x16)
check help 0 "--precision-bisect" -- "$KILN" compare --help
check help_out 0 "--bisect-out" -- "$KILN" compare --help
check help_emulate 0 "--emulate-precision" -- "$KILN" compare --help
check build_help 0 "@FILE" -- "$KILN" build --help

# The CPU computes an --fp16 engine in f32: it passes. Emulated f16 storage overflows in 'big' (exit 1).
check cpu_f16_is_f32 0 "PASS: 3 output" -- "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}"
check emulated_overflow 1 "FAIL y \[1,8\] .*non-finite" -- "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --emulate-precision
check emulated_first_layer 1 "first divergence: node 'big'" -- \
  "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --emulate-precision --layerwise
check emulated_rule 1 "rule: +\|engine - ref\| <= 0.05 \+ 0.01" -- \
  "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --emulate-precision

# The search: {big, scale}, in a bounded number of builds, written where asked, with the command to use.
out=$("$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --precision-bisect --bisect-out "$W/layers.txt" 2>&1)
rc=$?
check bisect_exit 0 "" -- test $rc = 0
check bisect_found 0 "found: 2 layer\(s\) in f32 make the f16 engine pass: 'big', 'scale'" -- echo "$out"
check bisect_command 0 "kiln build .*f16_overflow.onnx --backend cpu --shapes x:1x16,4x16,8x16 --fp16 --fp32-layers @$W/layers.txt" -- echo "$out"
check bisect_cpu_latency_note 0 "latency \(median of 20 infer\(\) runs at profile 0 opt: x \[4,16\]\): .* ms without, .* ms with" -- echo "$out"
check bisect_cpu_note 0 "note: the CPU backend computes in f32" -- echo "$out"
builds=$(grep -oE "^builds: [0-9]+" <<<"$out" | grep -oE "[0-9]+")
check bisect_builds_bounded 0 "" -- test "${builds:-99}" -le 10
check bisect_file 0 "^big,scale$" -- sh -c "grep -v '^#' '$W/layers.txt' | paste -sd, -"
# Read back: kiln build records the layers; the engine and an in-memory build with them pass the same rule.
check build_reads_file 0 '"fp32_layers": \[' -- "$KILN" build "$M" --backend cpu -q --fp16 "${SH[@]}" --fp32-layers "@$W/layers.txt" -o "$W/m.kiln" --json
check build_file_layers 0 "^big scale$" -- sh -c "\"$KILN\" build \"$M\" --backend cpu -q --fp16 --fp32-layers @$W/layers.txt -o $W/m2.kiln --json | $PY -c 'import json,sys; print(*json.load(sys.stdin)[\"fp32_layers\"])'"
check engine_with_file_passes 0 "PASS: 3 output" -- "$KILN" compare "$M" --engine "$W/m.kiln" --emulate-precision
check compare_reads_file 0 "PASS: 3 output" -- "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --emulate-precision --fp32-layers "@$W/layers.txt"
# Half the set is not enough: 'scale' reads the overflowed value rounded to f16 again.
check one_layer_not_enough 1 "FAIL y" -- "$KILN" compare "$M" --backend cpu -q --fp16 "${SH[@]}" --emulate-precision --fp32-layers big
check bisect_json 0 "^found big scale$" -- sh -c "\"$KILN\" compare \"$M\" --backend cpu -q --fp16 --precision-bisect --bisect-out $W/j.txt --json | $PY -c 'import json,sys; b=json.load(sys.stdin)[\"precision_bisect\"]; print(b[\"outcome\"], *b[\"layers\"])'"
# Default file: next to the model, MODEL without .onnx + .fp32-layers.txt.
cp "$M" "$W/copy.onnx"
check bisect_default_file 0 "wrote $W/copy.fp32-layers.txt" -- "$KILN" compare "$W/copy.onnx" --backend cpu -q --fp16 --precision-bisect
check default_file_exists 0 "" -- test -s "$W/copy.fp32-layers.txt"

# Layers the user keeps are in every build and in the file, before the ones found.
check bisect_kept 0 "'big', 'scale' \(without any one of them it fails\); with the 1 given by --fp32-layers" -- \
  "$KILN" compare "$M" --backend cpu -q --fp16 --fp32-layers fc1 --precision-bisect --bisect-out "$W/kept.txt"
check bisect_kept_file 0 "^fc1,big,scale$" -- sh -c "grep -v '^#' '$W/kept.txt' | paste -sd, -"
# A rule tighter than f16's rounding of the probabilities: only the softmax's output must stay f32.
check bisect_tight_rule 0 "found: 1 layer\(s\) in f32 make the f16 engine pass: 'softmax'" -- \
  "$KILN" compare "$CNN" --backend cpu -q --fp16 --atol 1e-5 --rtol 1e-4 --precision-bisect --bisect-out "$W/cnn.txt"

# Already passing: said, and nothing written.
check already_passes 0 "passes the rule already: no layer needs f32, nothing written" -- \
  "$KILN" compare "$CNN" --backend cpu -q --fp16 --precision-bisect --bisect-out "$W/none.txt"
check already_passes_no_file 1 "" -- test -e "$W/none.txt"
# A tolerance the f32 engine fails (the reference model's conv2 bias differs by 0.05, the outputs by up to 0.0035):
# no layer set helps (exit 1).
"$PY" "$FX/perturb_initializer.py" "$CNN" "$W/cnn_conv2_changed.onnx" c2_b 0.05
check all_fail 1 "even with every candidate layer in f32 the engine fails the rule" -- \
  "$KILN" compare "$CNN" --reference-model "$W/cnn_conv2_changed.onnx" --backend cpu -q --fp16 --atol 1e-3 --rtol 1e-3 \
  --precision-bisect --bisect-out "$W/nothing.txt"
check all_fail_no_file 1 "" -- test -e "$W/nothing.txt"

# @FILE: lines, commas, comments and blank lines; what kiln build records is what the file lists.
printf '# comment line\n\nfc1, big  # trailing comment\n  scale\n\n' > "$W/mixed.txt"
check file_format 0 "^fc1 big scale relu1$" -- sh -c "\"$KILN\" build \"$M\" --backend cpu -q --fp16 --fp32-layers @$W/mixed.txt,relu1 -o $W/m3.kiln --json | $PY -c 'import json,sys; print(*json.load(sys.stdin)[\"fp32_layers\"])'"
check file_missing 2 "--fp32-layers @$W/nope.txt: cannot read .*No such file" -- "$KILN" build "$M" --backend cpu -q --fp16 --fp32-layers "@$W/nope.txt" -o "$W/m4.kiln"
check file_directory 2 "is a directory" -- "$KILN" build "$M" --backend cpu -q --fp16 --fp32-layers "@$W" -o "$W/m4.kiln"
check compare_file_missing 2 "cannot read" -- "$KILN" compare "$M" --backend cpu -q --fp16 --fp32-layers "@$W/nope.txt"
printf 'bigg\n' > "$W/typo.txt"
check file_unknown_name 2 "bigg.*big" -- "$KILN" build "$M" --backend cpu -q --fp16 --fp32-layers "@$W/typo.txt" -o "$W/m4.kiln"

# Bad usage: exit 2 and what to do.
check bisect_needs_fp16 2 "add one of them" -- "$KILN" compare "$M" --backend cpu -q --precision-bisect
check bisect_no_engine 2 "instead of --engine" -- "$KILN" compare "$M" --engine "$W/m.kiln" --precision-bisect
check bisect_out_alone 2 "--bisect-out goes with --precision-bisect" -- "$KILN" compare "$M" --backend cpu --fp16 --bisect-out "$W/x.txt"
check emulate_needs_fp16 2 "add --fp16 or --bf16" -- "$KILN" compare "$M" --backend cpu --emulate-precision

echo "precision bisect CLI tests: $pass passed, $fail failed"
[ $fail = 0 ]
