#!/usr/bin/env bash
# kiln build --alias / automatic KV-cache pairing through the binary: what the build says, the engine's record,
# kiln inspect, and the errors for a bad pair.
# usage: alias_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"

CHECK_EXACT_RC=1
source "$ROOT/tests/cli/check_lib.sh"

python3 "$FX/make_lint_models.py" "$W" || { echo "FAIL cannot write the crafted models"; exit 1; }
KV="$W/kv_cache.onnx"
aliases_of() { "$KILN" build "$@" --backend cpu --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["aliases"])'; }

check help 0 "--alias.*OUTPUT:INPUT" -- "$KILN" build --help
check help_no_auto 0 "--no-auto-alias" -- "$KILN" build --help

# Paired by name, written in place (the scatter is the cache's last reader).
check auto_in_place 0 "alias: 'present.0' is written into the buffer of 'past.0' \(in place" -- \
  "$KILN" build "$KV" -o "$W/kv.kiln" --backend cpu
check auto_json 0 "^\{'present.0': 'past.0'\}$" -- aliases_of "$KV" -o "$W/kv2.kiln"
check no_auto 0 "^\{\}$" -- aliases_of "$KV" -o "$W/kv3.kiln" --no-auto-alias
check inspect_alias 0 "present.0 -> past.0 \(in place\)" -- "$KILN" inspect "$W/kv.kiln"
check inspect_alias_json 0 "^present.0 past.0 True$" -- bash -c "\"$KILN\" inspect \"$W/kv.kiln\" --json | python3 -c 'import json,sys; a=json.load(sys.stdin)[\"aliases\"][0]; print(a[\"output\"], a[\"input\"], a[\"in_place\"])'"
check run_aliased 0 "output 'present.0': f32\[1,6,4\]" -- "$KILN" run "$W/kv.kiln" --seed 1

# Declared: an output that is not a scatter of the input is copied there, and the build says why.
check declared_copy 0 "'act' is written into the buffer of 'past.0' \(copied there after each run: 'act' comes from node 'cache_read' \(Relu\)" -- \
  "$KILN" build "$KV" -o "$W/kv4.kiln" --backend cpu --alias act:past.0
check declared_json 0 "^\{'act': 'past.0'\}$" -- aliases_of "$KV" -o "$W/kv5.kiln" --alias act:past.0

# Errors (exit 2, invalid argument): a pair of another dtype or shape names both tensors; a malformed flag says
# the form.
check dtype_mismatch 2 "--alias present.0:idx: output 'present.0' is f32\[batch,6,4\] but input 'idx' is i64\[batch,1,4\]" -- \
  "$KILN" build "$KV" -o "$W/bad.kiln" --backend cpu --alias present.0:idx
check unknown_output 2 "'nope' is not an output of the engine \(outputs: present.0, act\)" -- \
  "$KILN" build "$KV" -o "$W/bad.kiln" --backend cpu --alias nope:past.0
check malformed 2 "--alias takes OUTPUT:INPUT" -- "$KILN" build "$KV" -o "$W/bad.kiln" --backend cpu --alias present.0
check no_partial_engine 0 "^absent$" -- bash -c "[ -e \"$W/bad.kiln\" ] && echo present || echo absent"

# A cache that grows by concatenation is not paired, and the build says why and where to read on.
check grow_not_paired 0 "'present.0' looks like the next state of 'past.0' but is f32\[batch,past_len\+1,4\] against f32\[batch,past_len,4\]: not aliased" -- \
  "$KILN" build "$W/kv_grow.onnx" -o "$W/grow.kiln" --backend cpu
check grow_json 0 "^\{\}$" -- aliases_of "$W/kv_grow.onnx" -o "$W/grow2.kiln"

echo "alias tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
