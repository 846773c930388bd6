#!/usr/bin/env bash
# Drives the kiln binary through the exact flags scripts use; checks exit codes, messages and files.
# usage: run_cli_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"
pass=0 fail=0

check() {  # check NAME EXPECTED_RC(0|nonzero) PATTERN -- command...
  local name=$1 want=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  local ok=1
  if [ "$want" = 0 ] && [ $rc -ne 0 ]; then ok=0; fi
  if [ "$want" != 0 ] && { [ $rc -eq 0 ] || [ $rc -ge 128 ]; }; then ok=0; fi  # >=128: killed by a signal (crash)
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$out"; then ok=0; fi
  if [ $ok = 1 ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name (rc=$rc, want ${want}, pattern '$pattern')"; echo "$out" | head -20; fi
}

CNN="$ROOT/models/tiny_cnn.onnx"
check help 0 "build.*run.*inspect|Subcommands" -- "$KILN" --help
check build_help 0 "--shapes" -- "$KILN" build --help
check run_help 0 "--output-dir" -- "$KILN" run --help
check version 0 "kiln [0-9]" -- "$KILN" --version

# Main path: build with a profile, run from .npy, write outputs.
check build 0 "built .*cnn.kiln" -- "$KILN" build "$CNN" -o "$W/cnn.kiln" --backend cpu --shapes image:1x3x32x32,4x3x32x32,8x3x32x32
[ -s "$W/cnn.kiln" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL engine file missing"; }
check run_npy 0 "output 'probs': f32\[3,10\]" -- "$KILN" run "$W/cnn.kiln" --input image="$ROOT/models/tiny_cnn.input.npy"
check run_outdir 0 "wrote 1 output" -- "$KILN" run "$W/cnn.kiln" --input image="$ROOT/models/tiny_cnn.input.npy" --output-dir "$W/out"
[ -s "$W/out/probs.npy" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL probs.npy missing"; }
check run_random 0 "random f32\[4,3,32,32\]" -- "$KILN" run "$W/cnn.kiln" --seed 3
check run_json 0 "\"latency_ms\"" -- "$KILN" run "$W/cnn.kiln" --json --iterations 3
check run_onnx_direct 0 "backend: cpu" -- "$KILN" run "$CNN" --backend cpu --shapes image:2x3x32x32
check inspect_model 0 "Conv +2" -- "$KILN" inspect "$CNN"
check inspect_engine_json 0 "\"backend\": \"cpu\"" -- "$KILN" inspect "$W/cnn.kiln" --json
check doctor 0 "GPU:" -- "$KILN" doctor
check doctor_engine 0 "can run here" -- "$KILN" doctor "$W/cnn.kiln"

# Bad input at build: each a clear message and a non-zero exit, never a crash.
check missing_file 1 "does not exist" -- "$KILN" build "$W/nope.onnx" -o "$W/x.kiln"
check empty_file 1 "empty" -- "$KILN" build "$FX/empty.onnx" -o "$W/x.kiln"
check random_bytes 1 "not an ONNX model|no graph" -- "$KILN" build "$FX/random_bytes.onnx" -o "$W/x.kiln"
check truncated 1 "not an ONNX model|truncated" -- "$KILN" build "$FX/truncated.onnx" -o "$W/x.kiln"
[ ! -e "$W/x.kiln" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL a failed build left $W/x.kiln"; }
check bad_shapes_flag 1 "NAME:MIN,OPT,MAX" -- "$KILN" build "$CNN" -o "$W/x.kiln" --shapes image
check bad_shapes_dims 1 "not a dim" -- "$KILN" build "$CNN" -o "$W/x.kiln" --shapes image:1xAx32x32
check profile_unknown_input 1 "names input 'nope'" -- "$KILN" build "$CNN" -o "$W/x.kiln" --shapes nope:1x3,1x3,1x3
check profile_fixed_dim 1 "fixed at 3" -- "$KILN" build "$CNN" -o "$W/x.kiln" --shapes image:1x4x32x32,1x4x32x32,1x4x32x32
check bad_backend 1 "auto, cpu or cuda" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend tpu

# Bad input at run.
check unknown_input 1 "no input 'nope'" -- "$KILN" run "$W/cnn.kiln" --input nope="$ROOT/models/tiny_cnn.input.npy"
check wrong_dtype 1 "must be f32 but i64" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_i64.npy"
check wrong_shape 1 "dim 2 must be 32" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_bad_shape.npy"
check outside_profile 1 "outside optimization profile" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_batch9.npy" --output-dir "$W/out_bad"
[ ! -e "$W/out_bad" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL a failed run left $W/out_bad"; }
check not_npy 1 "not a .npy|TensorProto" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/not_npy.npy"
check bad_input_flag 1 "NAME=FILE" -- "$KILN" run "$W/cnn.kiln" --input image
check missing_npy 1 "does not exist" -- "$KILN" run "$W/cnn.kiln" --input image="$W/none.npy"

# Corrupted engines.
head -c 100 "$W/cnn.kiln" >"$W/trunc.kiln"
check engine_truncated 1 "truncated" -- "$KILN" run "$W/trunc.kiln"
cp "$W/cnn.kiln" "$W/flip.kiln"; printf '\x55' | dd of="$W/flip.kiln" bs=1 seek=3000 conv=notrunc 2>/dev/null
check engine_corrupt 1 "checksum" -- "$KILN" run "$W/flip.kiln"
cp "$FX/random_bytes.onnx" "$W/random.kiln"
check engine_random 1 "not a kiln engine" -- "$KILN" run "$W/random.kiln"
check doctor_bad_engine 1 "cannot run here" -- "$KILN" doctor "$W/trunc.kiln"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
