#!/usr/bin/env bash
# The GPU items of the validation toolkit in one device call (the machine starts bare):
#   bench/toolkit_checks.sh [build] [bisect] [toolkit]       (default: all three)
#   build    kiln_cli, kiln_gpu_tests and kiln_soak (scripts/setup.sh with KILN_BUILD_TARGETS)
#   bisect   kiln compare --precision-bisect on an f16 CUDA build of tests/cli/fixtures/f16_overflow.onnx (one
#            layer overflows in f16), then the same compare with the layer set it wrote: that must pass
#   toolkit  bench/toolkit_gpu.sh, cut to end by KILN_DEADLINE_S (570) seconds after this script started
# Files go to $OUT (the device tool's output folder) or /tmp/kiln-out.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin" KILN_NO_APT=1 KILN_JOBS=${KILN_JOBS:-16}
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build bisect toolkit)
has() { [[ " ${steps[*]} " == *" $1 "* ]]; }
step() { echo "== $(date +%T) (+${SECONDS} s) $*"; }
failed=0
if has build; then
  step build
  KILN_BUILD_TARGETS="${KILN_BUILD_TARGETS:-kiln_cli kiln_gpu_tests kiln_soak}" scripts/setup.sh >"$OUT/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
fi
K=build/bin/kiln
M=tests/cli/fixtures/f16_overflow.onnx
if has bisect; then
  step "precision-bisect on $M"
  $K compare $M --backend cuda --fp16 --precision-bisect --bisect-out "$OUT/bisect.fp32-layers" \
    --html "$OUT/bisect.html" >"$OUT/bisect.txt" 2>&1
  echo "bisect rc=$? (0: the f32 set makes it pass)"; cat "$OUT/bisect.txt" | tail -30
  $K compare $M --backend cuda --fp16 --json >"$OUT/bisect_plain_f16.json" 2>"$OUT/bisect_plain_f16.err"
  echo "plain f16 compare rc=$? (1 expected: it overflows)"
  $K compare $M --backend cuda --fp16 --fp32-layers "@$OUT/bisect.fp32-layers" --json \
    >"$OUT/bisect_fixed_f16.json" 2>"$OUT/bisect_fixed_f16.err"
  rc=$?; echo "f16 + --fp32-layers @file compare rc=$rc (0 expected)"; [ $rc -ne 0 ] && failed=1
  tail -3 "$OUT/bisect_fixed_f16.err"
fi
if has toolkit; then
  left=$(( ${KILN_DEADLINE_S:-570} - SECONDS ))
  step "toolkit (${left} s at most)"
  timeout $left bash bench/toolkit_gpu.sh >"$OUT/toolkit.log" 2>&1
  echo "toolkit rc=$?"; grep -E "^==|rc=" "$OUT/toolkit.log" | tail -40
fi
step done
exit $failed
