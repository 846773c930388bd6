#!/usr/bin/env bash
# kiln bench's --streams, --duration, --sweep, --io host, p95, warnings and its JSON schema, on a CPU engine of
# tiny_cnn with two profiles. (The single-stream basics are in run_cli_tests.sh.)
# usage: bench_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
SCHEMA="$ROOT/docs/schemas/bench.schema.json"
VALIDATE="$ROOT/tests/cli/validate_json.py"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

source "$ROOT/tests/cli/check_lib.sh"
# check_json NAME FILE PYTHON: runs PYTHON with `j` the parsed FILE; it prints ok or fails an assert.
check_json() {
  check "$1" 0 "^ok$" -- "$PY" -c "import json, sys
j = json.load(open(sys.argv[1]))
$3
print('ok')" "$2"
}

E="$W/cnn2.kiln"
check build 0 "built" -- "$KILN" build "$ROOT/models/tiny_cnn.onnx" -o "$E" --backend cpu -q \
  --shapes image:1x3x32x32,2x3x32x32,4x3x32x32 --shapes image:5x3x32x32,6x3x32x32,8x3x32x32
check help_flags 0 "--streams" -- "$KILN" bench --help
check help_duration_wins 0 "wins over --iters" -- "$KILN" bench --help
check help_io 0 "--io" -- "$KILN" bench --help

# p95 joins the percentiles, between median and p99.
check text_p95 0 "median [0-9.]+ ms, mean [0-9.]+, p90 [0-9.]+, p95 [0-9.]+, p99 [0-9.]+, min [0-9.]+, max [0-9.]+, cv [0-9.]+%" -- \
  "$KILN" bench "$E" --iters 5 --warmup 1
check json_one 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --iters 20 --warmup 2 >\"$W/one.json\""
check_json json_p95 "$W/one.json" '
l = j["latency_ms"]
assert l["min"] <= l["median"] <= l["p95"] <= l["p99"] <= l["max"], l
assert l["p90"] <= l["p95"], l
for s in j["per_stream"]:
    assert s["latency_ms"]["median"] <= s["latency_ms"]["p95"] <= s["latency_ms"]["p99"], s
assert j["streams"] == 1 and len(j["per_stream"]) == 1 and j["throughput"]["basis"] == "mean_latency", j["throughput"]
assert l["stddev"] >= 0 and abs(l["cv"] - l["stddev"] / l["mean"]) < 1e-9, l
assert j["stability"]["cv"] == l["cv"] and j["stability"]["cv_limit"] == 0.025, j["stability"]
assert j["stability"]["unstable"] == (l["cv"] > 0.025) and j["stability"]["enqueue_bound"] is None, j["stability"]
assert j["enqueue_ms"] is None and j["io"]["mode"] == "device" and j["io"]["copies_timed"] is False'

# --streams 2: two contexts on two threads, aggregate throughput over the common window.
check streams_text 0 "throughput: [0-9.]+ inferences/s, [0-9.]+ samples/s at batch 2 \(aggregate of 2 streams, 16 runs in [0-9.]+ s\)" -- \
  "$KILN" bench "$E" --streams 2 --iters 8 --warmup 1
check streams_table 0 "^ +1 +8 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$" -- "$KILN" bench "$E" --streams 2 --iters 8 --warmup 1
check streams_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --streams 2 --iters 8 --warmup 1 >\"$W/streams.json\""
check_json streams_fields "$W/streams.json" '
assert j["streams"] == 2 and j["iterations"] == 16 and j["warmup"] == 2, (j["streams"], j["iterations"])
ps = j["per_stream"]
assert [s["stream"] for s in ps] == [0, 1] and all(s["iterations"] == 8 and s["warmup"] == 1 for s in ps), ps
t = j["throughput"]
assert t["basis"] == "wall_clock" and j["measured_s"] > 0, t
assert abs(t["inferences_per_s"] - 16 / j["measured_s"]) < 1e-6 * t["inferences_per_s"], (t, j["measured_s"])
assert abs(t["samples_per_s"] - 2 * t["inferences_per_s"]) < 1e-6 * t["samples_per_s"], t
assert all(s["measured_s"] <= j["measured_s"] + 1e-9 for s in ps), ps'

# --duration: about that long after warm-up, whatever --iters says.
check duration_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --duration 1 --iters 1 --warmup 1 >\"$W/duration.json\""
check_json duration_fields "$W/duration.json" '
assert j["requested_duration_s"] == 1 and j["requested_iterations"] is None, j
assert 1.0 <= j["measured_s"] < 3.0, j["measured_s"]
assert j["iterations"] > 1 and j["time_limited"] is False, j["iterations"]'
check duration_text 0 "timed window: [0-9.]+ s \(--duration 0.3\)" -- "$KILN" bench "$E" --duration 0.3 --warmup 0
start_ns=$(date +%s%N)
check duration_max_seconds 0 "\"time_limited\": true" -- "$KILN" bench "$E" --json --duration 30 --warmup 0 --max-seconds 0.5
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
if [ $elapsed_ms -lt 10000 ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL --max-seconds 0.5 did not cap --duration 30 (${elapsed_ms} ms)"; fi

# --sweep: every profile's min, opt and max.
check sweep_text 0 "1 max +image=8x3x32x32 +3 " -- "$KILN" bench "$E" --sweep --iters 3 --warmup 0
check sweep_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --sweep --iters 4 --warmup 0 >\"$W/sweep.json\""
check_json sweep_fields "$W/sweep.json" '
assert isinstance(j, list) and len(j) == 6, len(j)
got = [(r["sweep_point"]["profile"], r["sweep_point"]["point"], r["shapes"]["image"][0]) for r in j]
assert got == [(0, "min", 1), (0, "opt", 2), (0, "max", 4), (1, "min", 5), (1, "opt", 6), (1, "max", 8)], got
for r in j:
    l = r["latency_ms"]
    assert r["iterations"] == 4 and r["batch"] == r["shapes"]["image"][0], r["iterations"]
    assert l["median"] <= l["p95"] <= l["p99"], l
    assert abs(r["throughput"]["samples_per_s"] - r["batch"] * r["throughput"]["inferences_per_s"]) < 1e-6 * r["throughput"]["samples_per_s"]'
check sweep_with_shapes 1 "--sweep .* takes no --shapes" -- "$KILN" bench "$E" --sweep --shapes image:2x3x32x32
check sweep_with_profile 1 "takes no --opt-profile, --profile" -- "$KILN" bench "$E" --sweep --opt-profile 1 --profile

# --io host on a CPU engine: said to be not applicable, no numbers made up.
check io_host_text 0 "host I/O \(--io host\): H2D and D2H are not applicable on the CPU backend" -- \
  "$KILN" bench "$E" --io host --iters 3 --warmup 0
check io_host_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --io host --iters 3 --warmup 0 >\"$W/io.json\""
check_json io_host_fields "$W/io.json" '
io = j["io"]
assert io["mode"] == "host" and io["copies_timed"] is False, io
assert io["h2d_ms"] is None and io["d2h_ms"] is None and io["compute_ms"] is None and "CPU" in io["note"], io'
check io_bad 1 "--io must be 'device' .* or 'host'" -- "$KILN" bench "$E" --io disk

# The unstable-run warning: forced with --cv-limit 0 (any spread is over it), absent with a limit no run reaches
# (the coefficient of variation of 20 positive values is at most sqrt(19), about 436 %).
check cv_warning_text 0 "^warning: unstable run: latency varies by [0-9.]+% \(coefficient of variation over 20 runs; limit 0.0%\)" -- \
  "$KILN" bench "$E" --iters 20 --warmup 0 --cv-limit 0
check cv_warning_advice 0 "^warning: unstable run: .*max [0-9.]+: close other work on the machine" -- \
  "$KILN" bench "$E" --iters 20 --warmup 0 --cv-limit 0
check sweep_warnings 0 "^1$" -- bash -c "\"$KILN\" bench \"$E\" --sweep --iters 3 --warmup 0 --cv-limit 0 | grep -c '^what to do (unstable): close other work'"
check sweep_warning_rows 0 "^6$" -- bash -c "\"$KILN\" bench \"$E\" --sweep --iters 3 --warmup 0 --cv-limit 0 | grep -cE '^warning: profile [01] (min|opt|max): unstable run'"
check cv_warning_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --iters 20 --warmup 0 --cv-limit 0 >\"$W/cv.json\""
check_json cv_warning_fields "$W/cv.json" '
assert j["stability"]["unstable"] is True and j["stability"]["cv_limit"] == 0, j["stability"]
assert [w["kind"] for w in j["warnings"]] == ["unstable"] and "unstable run" in j["warnings"][0]["message"], j["warnings"]
assert "--duration" in j["warnings"][0]["advice"], j["warnings"]'
check cv_no_warning_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --iters 20 --warmup 0 --cv-limit 1000 >\"$W/nocv.json\""
check_json cv_no_warning_fields "$W/nocv.json" '
assert j["stability"]["unstable"] is False and j["warnings"] == [], j["warnings"]'
check cv_limit_negative 1 "--cv-limit must be 0 or more" -- "$KILN" bench "$E" --cv-limit -1

# Bad values.
check streams_zero 1 "--streams must be 1 to 256, got 0" -- "$KILN" bench "$E" --streams 0
check duration_negative 1 "--duration must be 0 \(off\) or a number of seconds, got -1" -- "$KILN" bench "$E" --duration -1

# Every --json output above, and one with --profile, matches the schema in docs/schemas/; a document that does
# not (a field removed, one added, a value out of range) fails it, so the check can fail.
check profile_json 0 "" -- bash -c "\"$KILN\" bench \"$E\" --json --iters 2 --warmup 0 --profile --profile-runs 2 >\"$W/profile.json\""
check schema_valid 0 "^ok$" -- "$PY" "$VALIDATE" "$SCHEMA" "$W/one.json" "$W/streams.json" "$W/duration.json" \
  "$W/sweep.json" "$W/io.json" "$W/cv.json" "$W/profile.json"
# A CPU engine holds no shape plans and keys nothing by value (docs/scalar_inputs.md).
check execution_plans 0 "^0 0 \[\]$" -- "$PY" -c 'import json, sys; x = json.load(open(sys.argv[1]))["execution"]; print(x["cached_plans"], x["plan_cache_limit"], x["value_keyed_inputs"])' "$W/one.json"
"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
del j["latency_ms"]["p95"]
j["unexpected"] = 1
j["streams"] = 0
json.dump(j, open(sys.argv[2], "w"))' "$W/one.json" "$W/bad.json"
check schema_rejects 1 "required field 'p95' is missing" -- "$PY" "$VALIDATE" "$SCHEMA" "$W/bad.json"
check schema_rejects_extra 1 "field 'unexpected' is not in the schema" -- "$PY" "$VALIDATE" "$SCHEMA" "$W/bad.json"
check schema_rejects_range 1 "streams: 0 is below the minimum 1" -- "$PY" "$VALIDATE" "$SCHEMA" "$W/bad.json"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
