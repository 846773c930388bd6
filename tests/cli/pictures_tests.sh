#!/usr/bin/env bash
# kiln inspect's layer table, memory plan and pictures (--layers, --dot, --svg, --times, --profile-json); the
# SVGs are rendered in headless Chromium and the screenshots' pixels checked (tests/cli/browser_check.py).
# usage: pictures_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
# Exit 77 (ctest: skipped) when every other check passed but there is no Chromium to render with.
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
BROWSER="$ROOT/tests/cli/browser_check.py"

source "$ROOT/tests/cli/check_lib.sh"

CNN="$ROOT/models/tiny_cnn.onnx"
check help 0 "--svg.*" -- "$KILN" inspect --help
check help_flags 0 "--profile-json" -- "$KILN" inspect --help
check build 0 "built" -- "$KILN" build "$CNN" -o "$W/cnn.kiln" --backend cpu --shapes image:1x3x32x32,4x3x32x32,8x3x32x32

# An engine lists its (few) layers and the memory plan by default.
check engine_layers 0 "layers after fusion \([0-9]+\)" -- "$KILN" inspect "$W/cnn.kiln"
check engine_fused_op 0 "FusedConv +f32 +\[" -- "$KILN" inspect "$W/cnn.kiln"
check engine_memory 0 "profile 0 max image=\[8,3,32,32\]: arena [0-9.]+ MiB" -- "$KILN" inspect "$W/cnn.kiln"
"$KILN" inspect "$W/cnn.kiln" --json >"$W/cnn.json" 2>&1
check engine_json 0 "ok" -- python3 - "$W/cnn.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
layers, mem = j["layers"], j["memory"]
assert layers and all(l["op"] and l["dtype"] == "f32" and l["shape"].startswith("[") for l in layers), layers
assert any(l["op"] == "FusedConv" for l in layers), [l["op"] for l in layers]
assert len(layers) == j["nodes"], (len(layers), j["nodes"])
assert all(l["tactic"] is None for l in layers)  # a CPU engine stores no tactics
assert mem["weight_bytes"] == j["parameter_bytes"], (mem["weight_bytes"], j["parameter_bytes"])
pts = mem["points"]
assert [p["point"] for p in pts] == ["min", "opt", "max"], pts
a = [p["arena_bytes"] for p in pts]
assert 0 < a[0] < a[1] < a[2] and a[2] <= pts[2]["total_bytes"], a
assert pts[2]["dims"]["image"] == [8, 3, 32, 32]
print("ok")
PY

# A model: --layers runs the default passes first; dims from --shapes (its batch is dynamic).
check onnx_layers 0 "FusedConv" -- "$KILN" inspect "$CNN" --layers --shapes image:2x3x32x32
check onnx_memory 0 "static|image=\[2,3,32,32\]: arena" -- "$KILN" inspect "$CNN" --layers --shapes image:2x3x32x32
check onnx_no_dims 0 "not estimated: input 'image' has dynamic shape" -- "$KILN" inspect "$CNN" --layers
check onnx_default_has_no_table 0 "" -- sh -c "! \"$KILN\" inspect \"$CNN\" | grep -q 'layers after fusion'"

# DOT and SVG: one box per layer, ellipses for I/O, well-formed, deterministic.
check dot 0 "wrote .*cnn.dot" -- "$KILN" inspect "$W/cnn.kiln" --dot "$W/cnn.dot"
check svg 0 "wrote .*cnn.svg" -- "$KILN" inspect "$W/cnn.kiln" --svg "$W/cnn.svg"
check svg_onnx 0 "wrote" -- "$KILN" inspect "$CNN" --svg "$W/model.svg"
check svg_again 0 "" -- "$KILN" inspect "$W/cnn.kiln" --svg "$W/cnn2.svg"
check svg_deterministic 0 "" -- cmp "$W/cnn.svg" "$W/cnn2.svg"
check pictures_match_layers 0 "ok" -- python3 - "$W/cnn.json" "$W/cnn.dot" "$W/cnn.svg" <<'PY'
import json, sys, xml.etree.ElementTree as ET
layers = json.load(open(sys.argv[1]))["layers"]
dot = open(sys.argv[2]).read()
assert dot.startswith("digraph") and dot.count("shape=box") == len(layers), dot
assert dot.count("shape=ellipse") == 2 and dot.count(" -> ") >= len(layers), dot  # image in, probs out
svg = ET.parse(sys.argv[3]).getroot()
ns = "{http://www.w3.org/2000/svg}"
groups = [g for g in svg.iter(ns + "g") if g.get("class") == "layer"]
assert [g.get("data-name") for g in groups] == [l["name"] for l in layers]
assert len([g for g in svg.iter(ns + "g") if g.get("class") in ("input", "output")]) == 2
texts = " ".join(t.text or "" for t in svg.iter(ns + "text"))
assert "FusedConv" in texts and "[batch,3,32,32]" in texts, texts[:300]
print("ok")
PY

# Times: a text file; a bad line and times for another model are errors that say so.
python3 - "$W/cnn.json" "$W/times.txt" <<'PY'
import json, sys
layers = json.load(open(sys.argv[1]))["layers"]
with open(sys.argv[2], "w") as f:
    f.write("# slowest first\n")
    for i, l in enumerate(layers):
        f.write("%s %.3f\n" % (l["name"], 2.0 if i == 0 else 0.1 * (i % 3)))
PY
check times_table 0 "2\.0000 ms" -- "$KILN" inspect "$W/cnn.kiln" --layers --times "$W/times.txt" --svg "$W/timed.svg"
check times_legend 0 "time per layer" -- cat "$W/timed.svg"
printf 'conv1 1.0\nconv2 fast\n' >"$W/bad_times.txt"
check times_bad_line nonzero "line 2: expected 'LAYER_NAME MILLISECONDS'" -- "$KILN" inspect "$W/cnn.kiln" --times "$W/bad_times.txt" --svg "$W/x.svg"
printf 'nosuchlayer 1.0\n' >"$W/other_times.txt"
check times_other_model nonzero "none of the 1 timed layers" -- "$KILN" inspect "$W/cnn.kiln" --times "$W/other_times.txt" --svg "$W/x.svg"
# --profile-json reads kiln bench's per-layer profile wherever the report nests it.
python3 - "$W/cnn.json" "$W/profile.json" <<'PY'
import json, sys
layers = json.load(open(sys.argv[1]))["layers"]
prof = {"profile": {"runs": 3, "layers": [{"rank": i + 1, "name": l["name"], "op": l["op"], "placement": "gpu",
                                            "tactic": "t%d" % i, "ms": 1.0 / (i + 1)} for i, l in enumerate(layers)]}}
json.dump({"engine": "cnn.kiln", "configs": [prof]}, open(sys.argv[2], "w"))
PY
check profile_json 0 "1\.0000 ms  t0" -- "$KILN" inspect "$W/cnn.kiln" --layers --profile-json "$W/profile.json"
# A real profile from kiln bench: its slowest layer is the hot box of the picture.
"$KILN" bench "$W/cnn.kiln" --profile --json --shapes image:1x3x32x32 --iters 3 --warmup 1 >"$W/bench.json" 2>"$W/bench.err"
check bench_profile_svg 0 "wrote" -- "$KILN" inspect "$W/cnn.kiln" --profile-json "$W/bench.json" --svg "$W/bench.svg"
check bench_profile_hot 0 "ok" -- python3 - "$W/bench.json" "$W/bench.svg" <<'PY'
import json, sys, xml.etree.ElementTree as ET
layers = json.load(open(sys.argv[1]))["profile"]["layers"]
slowest = max(layers, key=lambda l: l["ms"])["name"]
fills = {g.get("data-name"): g.get("data-fill") for g in ET.parse(sys.argv[2]).getroot().iter("{http://www.w3.org/2000/svg}g")
         if g.get("class") == "layer"}
hot = [n for n, f in fills.items() if f == fills[slowest]]
assert hot == [slowest] or all(l["ms"] == layers[0]["ms"] for l in layers if l["name"] in hot), (slowest, fills)
print("ok")
PY
check profile_json_not_bench nonzero "no per-layer times" -- "$KILN" inspect "$W/cnn.kiln" --profile-json "$W/cnn.json" --svg "$W/x.svg"

# bench --html and compare --html: one self-contained page each, from the same run as the JSON beside it.
check bench_help_html 0 "--html" -- "$KILN" bench --help
check compare_help_html 0 "--html" -- "$KILN" compare --help
check bench_html 0 "" -- bash -c "\"$KILN\" bench \"$W/cnn.kiln\" --profile --json --iters 60 --warmup 2 --shapes image:2x3x32x32 \
  --html \"$W/bench.html\" >\"$W/bench_html.json\""
"$KILN" bench "$W/cnn.kiln" --sweep --json --iters 20 --warmup 1 --html "$W/sweep.html" >"$W/sweep.json" 2>"$W/sweep.err"
check bench_html_wrote 0 "kiln: wrote .*sweep.html" -- cat "$W/sweep.err"
check bench_html_bad_dir 2 "--html .*no/such/dir/x.html: the directory '.*no/such/dir' does not exist" -- \
  "$KILN" bench "$W/cnn.kiln" --iters 100000 --html "$W/no/such/dir/x.html"
check bench_html_is_dir 2 "is a directory" -- "$KILN" bench "$W/cnn.kiln" --html "$W"
check bench_pages 0 "ok" -- python3 "$ROOT/tests/cli/html_pages.py" bench "$W/bench.html" "$W/bench_html.json"
check sweep_page 0 "ok" -- python3 "$ROOT/tests/cli/html_pages.py" sweep "$W/sweep.html" "$W/sweep.json"
# compare: an f16 emulation under a rule some layers meet and some do not (the output does: exit 0); the page
# draws each output and layer as the JSON has it.
"$KILN" compare "$CNN" --backend cpu --fp16 --emulate-precision --layerwise --atol 1e-4 --rtol 1e-4 --json \
  --html "$W/compare.html" >"$W/compare.json" 2>"$W/compare.err"
compare_rc=$?
check compare_html_rc 0 "^0$" -- echo "$compare_rc"
check compare_page 0 "ok" -- python3 "$ROOT/tests/cli/html_pages.py" compare "$W/compare.html" "$W/compare.json"
# The f16 overflow model: the output fails (exit 1, page written all the same), the layer before the overflow passes.
F16="$ROOT/tests/cli/fixtures/f16_overflow.onnx"
"$KILN" compare "$F16" --backend cpu --fp16 --emulate-precision --layerwise --json --html "$W/overflow.html" \
  >"$W/overflow.json" 2>/dev/null
overflow_rc=$?
check overflow_html_rc 0 "^1$" -- echo "$overflow_rc"
check overflow_page 0 "ok" -- python3 "$ROOT/tests/cli/html_pages.py" compare "$W/overflow.html" "$W/overflow.json"
check compare_html_bad_dir 2 "does not exist" -- "$KILN" compare "$CNN" --backend cpu --html "$W/no/dir/c.html"

# The browser: the op-coloured and the time-coloured pictures as Chromium draws them.
if ! python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/cli'); import browser_check; sys.exit(0 if browser_check.find_chromium() else 1)"; then
  echo "$pass passed, $fail failed"
  [ $fail -eq 0 ] || exit 1
  echo "SKIP: the browser checks: chromium is not installed (apt-get install chromium; scripts/setup.sh installs it)"
  exit 77
fi
# What each picture must show, read from the SVG itself: the fill of every layer box.
read_svg() {  # read_svg FILE -> "WIDTHxHEIGHT FILL:COUNT ..." (box fills with how many layers have each)
  python3 - "$1" <<'PY'
import collections, math, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
fills = collections.Counter(g.get("data-fill") for g in root.iter("{http://www.w3.org/2000/svg}g")
                            if g.get("class") == "layer")
print("%dx%d" % (math.ceil(float(root.get("width"))), math.ceil(float(root.get("height")))),
      " ".join("%s:%d" % kv for kv in sorted(fills.items())))
PY
}
read -r size fills <<<"$(read_svg "$W/cnn.svg")"
args=()
for f in $fills; do args+=(--regions "$f"); done  # each op colour: exactly as many boxes as layers of that op
check browser_ops 0 "" -- python3 "$BROWSER" "$W/cnn.svg" --size "$size" --png "$W/cnn.png" --min-ink 0.05 "${args[@]}" \
  --expect "#b7e4c7:1000" --expect "#a5c8ff:1000"
read -r size fills <<<"$(read_svg "$W/timed.svg")"
# The first layer got the largest time: its box alone has the hot end of the scale.
hot=$(python3 -c "import sys, xml.etree.ElementTree as ET; print(next(g.get('data-fill') for g in ET.parse(sys.argv[1]).getroot().iter('{http://www.w3.org/2000/svg}g') if g.get('class') == 'layer'))" "$W/timed.svg")
check browser_times 0 "" -- python3 "$BROWSER" "$W/timed.svg" --size "$size" --png "$W/timed.png" --min-ink 0.05 \
  --regions "$hot:1" --expect "$hot:2000"

# The HTML pages: the histogram's blue, one orange bar per profiled layer, one green bar per sweep point, and
# compare's green and red bars as many as the JSON has tensors within and over the rule.
layers=$(python3 -c "import json, sys; print(len(json.load(open(sys.argv[1]))['profile']['layers']))" "$W/bench_html.json")
check browser_bench_html 0 "" -- python3 "$BROWSER" "$W/bench.html" --size 1000x2000 --png "$W/bench_html.png" \
  --min-area 30 --expect "#4c78a8:1500" --regions "#f58518:$layers"
check browser_sweep_html 0 "" -- python3 "$BROWSER" "$W/sweep.html" --size 1000x2400 --png "$W/sweep_html.png" \
  --min-area 30 --regions "#54a24b:3" --expect "#4c78a8:3000"
for page in compare overflow; do
  read -r greens reds <<<"$(python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['cases']
ts = [t for case in c for t in case['outputs'] + case['layers']]
print(sum(t['pass'] for t in ts), sum(not t['pass'] for t in ts))" "$W/$page.json")"
  check "browser_${page}_html" 0 "" -- python3 "$BROWSER" "$W/$page.html" --size 1000x1000 --png "$W/${page}_html.png" \
    --min-area 30 --regions "#59a14f:$greens" --regions "#e15759:$reds"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
