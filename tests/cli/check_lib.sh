# Sourced by the CLI test scripts. check NAME RC PATTERN -- command...: runs the command and passes when its exit
# code is right and its output (stdout and stderr) matches PATTERN, an extended regex (empty: anything).
# RC: with CHECK_EXACT_RC=1 set before sourcing, exactly that code; otherwise 0, or any other number for "failed
# cleanly": non-zero and not killed by a signal (128 and above is a crash).
pass=0 fail=0

check() {
  local name=$1 want=$2 pattern=$3; shift 4
  local out rc ok=1
  out=$("$@" 2>&1); rc=$?
  if [ "${CHECK_EXACT_RC:-0}" = 1 ]; then
    [ "$rc" = "$want" ] || ok=0
  elif [ "$want" = 0 ]; then
    [ $rc -eq 0 ] || ok=0
  else
    { [ $rc -ne 0 ] && [ $rc -lt 128 ]; } || ok=0
  fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$out"; then ok=0; fi
  if [ $ok = 1 ]; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); echo "FAIL $name (rc=$rc, want $want, pattern '$pattern')"; echo "$out" | head -40
  fi
}
