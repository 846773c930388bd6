#!/usr/bin/env bash
# kiln build --bundle through the binary: one engine per profile in one file, run/bench/inspect routing each shape
# to the member that takes it, and the errors for a bundle that cannot be.
# usage: bundle_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
CNN="$ROOT/models/tiny_cnn.onnx"

CHECK_EXACT_RC=1
source "$ROOT/tests/cli/check_lib.sh"

SMALL="image:1x3x32x32,4x3x32x32,4x3x32x32" LARGE="image:5x3x32x32,16x3x32x32,32x3x32x32"
# JSON_OF 'EXPR' < json: prints EXPR of the parsed document j. NPY FILE N: a random f32 [N,3,32,32] .npy (no numpy).
JSON_OF="python3 $W/json_of.py" NPY="python3 $W/npy.py"
echo 'import json, sys; j = json.load(sys.stdin); r = eval(sys.argv[1]); print(*(r if isinstance(r, tuple) else (r,)))' >"$W/json_of.py"
cat >"$W/npy.py" <<'PY'
import random, struct, sys
n = int(sys.argv[2]); rng = random.Random(n)
head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 3, 32, 32), }" % n
head += " " * (63 - (10 + len(head)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
    f.write(struct.pack("<%df" % (n * 3 * 32 * 32), *[rng.uniform(-1, 1) for _ in range(n * 3 * 32 * 32)]))
PY

check help 0 "--bundle .*one engine per --shapes profile" -- "$KILN" build --help
check help_precisions 0 "--bundle-precisions" -- "$KILN" build --help
check build 0 "bundle member 2 of 2: profile 1, f32.*built $W/b.kiln \(cpu backend, a bundle of 2 engines" -- \
  bash -c "\"$KILN\" build \"$CNN\" -o \"$W/b.kiln\" --backend cpu --shapes $SMALL --shapes $LARGE --bundle 2>&1 | tr '\n' ' '"
check build_json 0 "^2 \[\[1, 3, 32, 32\], \[5, 3, 32, 32\]\]$" -- bash -c "\"$KILN\" build \"$CNN\" -o \"$W/b2.kiln\" \
  --backend cpu --shapes $SMALL --shapes $LARGE --bundle --json | $JSON_OF 'len(j[\"bundle_members\"]), [m[\"profiles\"][0][\"image\"][\"min\"] for m in j[\"bundle_members\"]]'"

# One engine of the same two profiles, to compare the file size: the bundle stores the weights once.
"$KILN" build "$CNN" -o "$W/one.kiln" --backend cpu --shapes "$SMALL" -q >/dev/null
check smaller_than_two 0 "^yes$" -- bash -c "[ \$(stat -c %s \"$W/b.kiln\") -lt \$((2 * \$(stat -c %s \"$W/one.kiln\"))) ] && echo yes"

check inspect 0 "a bundle of 2 engines.*\[0\] f32, [0-9]+ nodes: image \[1,3,32,32\]\.\.\[4,3,32,32\].*\[1\] f32, [0-9]+ nodes: image \[5,3,32,32\]\.\.\[32,3,32,32\].*engine 0 of the bundle" -- \
  bash -c "\"$KILN\" inspect \"$W/b.kiln\" | tr '\n' ' '"
check inspect_member 0 "engine 1 of the bundle" -- "$KILN" inspect "$W/b.kiln" --member 1
check inspect_bad_member 2 "--member 2: the bundle holds engines 0..1" -- "$KILN" inspect "$W/b.kiln" --member 2
check inspect_json 0 "^2 0$" -- bash -c "\"$KILN\" inspect \"$W/b.kiln\" --json | $JSON_OF 'len(j[\"bundle\"][\"members\"]), j[\"bundle\"][\"shown_member\"]'"

# Each shape runs on the member that takes it, with the same answer as a plain engine.
"$KILN" build "$CNN" -o "$W/plain.kiln" --backend cpu --shapes "image:1x3x32x32,8x3x32x32,32x3x32x32" -q >/dev/null
for b in 2 20; do
  $NPY "$W/x$b.npy" $b
  "$KILN" run "$W/b.kiln" --input image="$W/x$b.npy" --output-dir "$W/out_b$b" -q >/dev/null 2>&1
  "$KILN" run "$W/plain.kiln" --input image="$W/x$b.npy" --output-dir "$W/out_p$b" -q >/dev/null 2>&1
  check "same_as_plain_b$b" 0 "^same$" -- bash -c "cmp -s \"$W/out_b$b/probs.npy\" \"$W/out_p$b/probs.npy\" && echo same"
done
check run_pinned 0 "probs.*f32\[16,10\]" -- "$KILN" run "$W/b.kiln" --opt-profile 1
check bench_routes 0 "^1 \[20, 3, 32, 32\]$" -- bash -c "\"$KILN\" bench \"$W/b.kiln\" --shapes image:20x3x32x32 \
  --iters 5 --warmup 1 --json 2>/dev/null | $JSON_OF 'j[\"execution\"][\"bundle_member\"], j[\"shapes\"][\"image\"]'"
check run_outside 1 "no engine of the bundle takes input shapes 'image' \[40,3,32,32\].*member 1 profile 0: 'image' \[5,3,32,32\]\.\.\[32,3,32,32\]" -- \
  bash -c "$NPY $W/x40.npy 40 && \"$KILN\" run \"$W/b.kiln\" --input image=$W/x40.npy"

# Errors: --bundle needs two engines; --bundle-precisions with --fp16 is ambiguous.
check one_profile 2 "--bundle needs two or more engines" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --shapes "$SMALL" --bundle
check precision_clash 2 "--bundle-precisions sets each member's precision" -- \
  "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --shapes "$SMALL" --bundle-precisions f32,f16 --fp16
check bad_precision 2 "--bundle-precisions takes f32, tf32, f16 or bf16" -- \
  "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --shapes "$SMALL" --bundle-precisions f32,f8
check no_partial 0 "^absent$" -- bash -c "[ -e \"$W/x.kiln\" ] && echo present || echo absent"

echo "bundle tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
