#!/usr/bin/env bash
# The GPU machine's reliability checks, in one command (the machine starts bare):
#   bench/reliability.sh [build] [oom] [sanitize] [soak]        (default: build oom sanitize)
#   build     kiln_gpu_tests and kiln_soak only (scripts/setup.sh with KILN_BUILD_TARGETS) into build/
#   oom       the out-of-memory tests: GpuOutOfMemory.* and the memory-cap tests, the GPU filled first
#   sanitize  tests/gpu/sanitize.sh: compute-sanitizer memcheck, racecheck, synccheck (see that script), its
#             runs limited to end by KILN_DEADLINE_S (560) seconds after this script started
#   soak      kiln_soak: 8 threads, one engine, KILN_SOAK_SECONDS (480) of mixed shapes; shortened to end by
#             KILN_DEADLINE_S (560) seconds after this script started, so a bare machine's build still fits
#             one device call (the report says how long it ran)
# Logs, soak.json/soak.md and sanitize.md go to $OUT (the device tool's output folder) or /tmp/kiln-out; the
# last lines printed are the summary. Exit 1 when any step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/torch/.venv/bin" KILN_NO_APT=1 KILN_JOBS=${KILN_JOBS:-16}
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cudnn,cublas}/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build oom sanitize)
has() { [[ " ${steps[*]} " == *" $1 "* ]]; }
step() { echo "== $(date +%T) (+${SECONDS} s) $*"; }
results=()
failed=0
note() { results+=("$1"); }

if has build; then
  step build
  t0=$SECONDS
  if ! KILN_BUILD_TARGETS="kiln_gpu_tests kiln_soak" scripts/setup.sh >"$OUT/reliability_build.log" 2>&1; then
    grep -E "error|FAILED" "$OUT/reliability_build.log" | head -40
    echo "build failed (log: reliability_build.log)"
    exit 1
  fi
  note "build: $((SECONDS - t0)) s"
fi
if has oom; then
  step out-of-memory tests
  build/tests/kiln_gpu_tests --gtest_filter='GpuOutOfMemory.*:*MemoryCap*' >"$OUT/oom_tests.log" 2>&1
  rc=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED|       OK) |Failure|out of GPU memory|Which is|Expected" "$OUT/oom_tests.log" | head -40
  [ $rc -ne 0 ] && failed=1
  note "oom tests: $(grep -E '^\[  PASSED  \]|FAILED TEST' "$OUT/oom_tests.log" | tr '\n' ' ') (rc $rc)"
fi
if has sanitize; then
  # Its four runs share what is left before the deadline (at most 110 s each), so a bare machine's build still
  # fits one device call; a run cut short says so (run `bench/reliability.sh sanitize` again on the warm machine).
  per_run=$(( (${KILN_DEADLINE_S:-560} - SECONDS - 20) / 4 ))
  [ "$per_run" -gt 110 ] && per_run=110
  [ "$per_run" -lt 20 ] && per_run=20
  # On a warm machine (built already) a caller may give each run longer: KILN_SANITIZE_LIMIT_S=130 with
  # KILN_DEADLINE_S=590 fits the four runs in one call.
  per_run=${KILN_SANITIZE_LIMIT_S:-$per_run}
  step "compute-sanitizer (${per_run} s per run at most)"
  KILN_SANITIZE_LIMIT_S=$per_run tests/gpu/sanitize.sh build
  rc=$?
  [ $rc -ne 0 ] && failed=1
  note "compute-sanitizer: rc $rc (sanitize.md)"
fi
if has soak; then
  left=$(( ${KILN_DEADLINE_S:-560} - SECONDS - 25 ))  # 25 s: engine builds, references, report
  secs=${KILN_SOAK_SECONDS:-480}
  [ "$left" -lt "$secs" ] && secs=$left
  if [ "$secs" -lt 30 ]; then
    echo "soak: only ${secs} s left before the deadline; run it again on the warm machine (its build is then done)"
    failed=1
  else
    step "soak ${secs} s"
    build/tests/kiln_soak --threads 8 --seconds "$secs" --out "$OUT" >"$OUT/soak.log" 2>&1
    rc=$?
    cat "$OUT/soak.log" | tail -20
    [ $rc -ne 0 ] && failed=1
    note "soak: ${secs} s, rc $rc (soak.md)"
  fi
fi
step done
printf '%s\n' "${results[@]}"
exit $failed
