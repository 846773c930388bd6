#!/usr/bin/env bash
# Drives the kiln binary through the exact flags scripts use; checks exit codes, messages and files.
# usage: run_cli_tests.sh KILN_BINARY REPO_ROOT WORK_DIR
set -uo pipefail
KILN=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
FX="$ROOT/tests/cli/fixtures"

source "$ROOT/tests/cli/check_lib.sh"

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
check build_two_profiles 0 "built .*cnn2.kiln" -- "$KILN" build "$CNN" -o "$W/cnn2.kiln" --backend cpu --shapes image:1x3x32x32,2x3x32x32,4x3x32x32 --shapes image:5x3x32x32,6x3x32x32,8x3x32x32
check inspect_two_profiles 0 "2 profiles \[8, 3, 32, 32\]" -- sh -c "\"$KILN\" inspect \"$W/cnn2.kiln\" --json | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"manifest\"][\"profiles\"]; print(len(p), \"profiles\", p[1][\"image\"][\"max\"])'"
check run_second_profile 0 "output 'probs': f32\[6,10\]" -- "$KILN" run "$W/cnn2.kiln" --opt-profile 1
check run_profile_range nonzero "outside optimization profile 1 which allows 5..8" -- "$KILN" run "$W/cnn2.kiln" --input image="$ROOT/models/tiny_cnn.input.npy" --opt-profile 1 --backend cpu
check run_no_such_profile nonzero "the engine has 2 profile\(s\)" -- "$KILN" run "$W/cnn2.kiln" --opt-profile 2
# --placement predicts CUDA placement: it needs a kiln built with the CUDA backend (no GPU needed).
# (Output captured first: under pipefail, kiln's nonzero exit would fail the pipeline even when grep matches.)
placement_probe=$("$KILN" inspect "$CNN" --placement --shapes image:1x3x32x32 2>&1)
if grep -q "needs a kiln built with the CUDA" <<<"$placement_probe"; then
  echo "skip: inspect --placement (this kiln has no CUDA backend)"
else
  check inspect_placement 0 "no value is read back from the GPU" -- "$KILN" inspect "$ROOT/models/tiny_attention.onnx" --placement --shapes tokens:2x16x32
  check inspect_placement_json 0 "\"cuda_graph_capturable\": true" -- "$KILN" inspect "$ROOT/models/tiny_attention.onnx" --placement --shapes tokens:2x16x32 --json
  check inspect_placement_dynamic nonzero "give its dims with --shapes tokens:DIMS" -- "$KILN" inspect "$ROOT/models/tiny_attention.onnx" --placement
fi
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

# Reduced precision: the flags parse, the manifest records them, --fp32-layers names are checked.
check build_help_precision 0 "default is f32 with TF32 off" -- "$KILN" build --help
check build_fp16_cpu 0 "CPU backend computes in f32" -- "$KILN" build "$CNN" -o "$W/cnn16.kiln" --backend cpu --fp16 --fp32-layers conv1,pool1
check inspect_fp32_layers 0 "\"fp32_layers\": \[" -- "$KILN" inspect "$W/cnn16.kiln" --json
check fp32_layers_unknown 1 "nearest node names: 'conv1'" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --fp16 --fp32-layers conv1x
check fp32_layers_without_fp16 1 "only matters with --fp16 or --bf16" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --fp32-layers conv1
check build_reduced_io 0 "float inputs and outputs are f16" -- "$KILN" build "$CNN" -o "$W/cnn16io.kiln" --backend cpu --fp16 --reduced-precision-io
check inspect_reduced_io 0 "\"dtype\": \"f16\"" -- "$KILN" inspect "$W/cnn16io.kiln" --json
check run_reduced_io 0 "f16" -- "$KILN" run "$W/cnn16io.kiln"
check conv_layout_bad_value 1 "conv-layout" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --fp16 --conv-layout nhcw
check conv_layout_cpu 1 "only applies to CUDA engines" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --fp16 --conv-layout nchw
check reduced_io_without_fp16 1 "needs --fp16 or --bf16" -- "$KILN" build "$CNN" -o "$W/x.kiln" --backend cpu --reduced-precision-io

# Bad input at run.
check unknown_input 1 "no input 'nope'" -- "$KILN" run "$W/cnn.kiln" --input nope="$ROOT/models/tiny_cnn.input.npy"
check wrong_dtype 1 "must be f32 but i64" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_i64.npy"
check wrong_shape 1 "dim 2 must be 32" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_bad_shape.npy"
check outside_profile 1 "outside optimization profile" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/image_batch9.npy" --output-dir "$W/out_bad"
[ ! -e "$W/out_bad" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL a failed run left $W/out_bad"; }
check not_npy 1 "not a .npy|TensorProto" -- "$KILN" run "$W/cnn.kiln" --input image="$FX/not_npy.npy"
check bad_input_flag 1 "NAME=FILE" -- "$KILN" run "$W/cnn.kiln" --input image
check missing_npy 1 "does not exist" -- "$KILN" run "$W/cnn.kiln" --input image="$W/none.npy"

# Crafted models (tests/cli/fixtures/make_crafted_models.py): sizes that overflow and names that are not UTF-8
# are clean errors with exit code 1, never an abort (134) or raw bytes on the terminal.
check concat_int64_max_build 1 "graph input 'a' is declared f32\[9223372036854775807\]" -- "$KILN" build "$FX/concat_int64_max.onnx" -o "$W/x.kiln" --backend cpu
check concat_int64_max_run 1 "overflows a 64-bit byte count" -- "$KILN" run "$FX/concat_int64_max.onnx" --backend cpu
check reshape_2p62 1 "node 'r' \(Reshape\): dimension 4611686018427387904 \* 4 overflows" -- "$KILN" build "$FX/reshape_2p62.onnx" -o "$W/x.kiln" --backend cpu
check bad_utf8_name 1 "input 'f[\\]xe3_b' is not produced" -- "$KILN" build "$FX/bad_utf8_name.onnx" -o "$W/x.kiln" --backend cpu
out=$("$KILN" build "$FX/bad_utf8_name.onnx" -o "$W/x.kiln" --backend cpu 2>&1)
if LC_ALL=C grep -q "$(printf '\343')" <<<"$out"; then fail=$((fail+1)); echo "FAIL bad_utf8_name printed a raw byte"; else pass=$((pass+1)); fi
check host_memory_limit 1 "KILN_HOST_MEMORY_LIMIT=1024 bytes allows" -- env KILN_HOST_MEMORY_LIMIT=1K "$KILN" run "$W/cnn.kiln" --seed 3
check host_memory_limit_bad 1 "KILN_HOST_MEMORY_LIMIT='lots' is not a size" -- env KILN_HOST_MEMORY_LIMIT=lots "$KILN" run "$W/cnn.kiln" --seed 3

# Corrupted engines.
head -c 100 "$W/cnn.kiln" >"$W/trunc.kiln"
check engine_truncated 1 "truncated" -- "$KILN" run "$W/trunc.kiln"
cp "$W/cnn.kiln" "$W/flip.kiln"; printf '\x55' | dd of="$W/flip.kiln" bs=1 seek=3000 conv=notrunc 2>/dev/null
check engine_corrupt 1 "checksum" -- "$KILN" run "$W/flip.kiln"
cp "$FX/random_bytes.onnx" "$W/random.kiln"
check engine_random 1 "not a kiln engine" -- "$KILN" run "$W/random.kiln"
check doctor_bad_engine 1 "cannot run here" -- "$KILN" doctor "$W/trunc.kiln"

# kiln bench on the CPU engine built above (profile opt: batch 4).
check bench_help 0 "--iters.*--warmup|--warmup" -- "$KILN" bench --help
check bench_text 0 "latency over 5 iterations \(1 warm-up, steady_clock\): median [0-9.]+ ms" -- "$KILN" bench "$W/cnn.kiln" --iters 5 --warmup 1
check bench_text_shapes 0 "shapes: image=4x3x32x32" -- "$KILN" bench "$W/cnn.kiln" --iters 2 --warmup 0
check bench_text_load 0 "load: [0-9.]+ ms \(engine file [0-9.]+ ms \+ first context [0-9.]+ ms\)" -- "$KILN" bench "$W/cnn.kiln" --iters 2 --warmup 0
check bench_json 0 "\"latency_ms\"" -- bash -c "\"$KILN\" bench \"$W/cnn.kiln\" --json --iters 7 --warmup 2 --shapes image:8x3x32x32 | tee \"$W/bench.json\""
check bench_input 0 "\"batch\": 3," -- "$KILN" bench "$W/cnn.kiln" --json --iters 2 --input image="$ROOT/models/tiny_cnn.input.npy"
check bench_max_seconds 0 "\"time_limited\": true" -- "$KILN" bench "$W/cnn.kiln" --json --iters 100000000 --warmup 0 --max-seconds 0.3
check bench_profile 0 "top 2 of [0-9]+:" -- "$KILN" bench "$W/cnn.kiln" --iters 2 --warmup 0 --profile --profile-runs 2 --top 2
check bench_profile_tactic_last 0 "placement +ms +share +cum +tactic" -- "$KILN" bench "$W/cnn.kiln" --iters 2 --warmup 0 --profile --profile-runs 2 --top 2
check bench_profile_op_summary 0 "FusedConv +2 " -- "$KILN" bench "$W/cnn.kiln" --iters 2 --warmup 0 --profile --profile-runs 2
check bench_profile_json 0 "\"profile\"" -- bash -c "\"$KILN\" bench \"$W/cnn.kiln\" --json --iters 2 --warmup 0 --profile --profile-runs 3 | tee \"$W/bench_profile.json\""
check bench_profile_runs_zero 1 "--profile-runs must be at least 1" -- "$KILN" bench "$W/cnn.kiln" --profile --profile-runs 0
if command -v python3 >/dev/null; then
  # The JSON parses and holds what scripts read from it, with values that make sense together.
  check bench_json_fields 0 "^ok$" -- python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
l = j["latency_ms"]
assert j["iterations"] == 7 and j["requested_iterations"] == 7 and j["warmup"] == 2, j
assert j["shapes"] == {"image": [8, 3, 32, 32]} and j["batch"] == 8, j["shapes"]
assert 0 < l["min"] <= l["median"] <= l["p90"] <= l["p99"] <= l["max"] and l["min"] <= l["mean"] <= l["max"], l
t = j["throughput"]
assert abs(t["inferences_per_s"] - 1000 / l["mean"]) < 1e-6 * t["inferences_per_s"], t
assert abs(t["samples_per_s"] - 8 * t["inferences_per_s"]) < 1e-6 * t["samples_per_s"], t
assert j["engine"]["backend"] == "cpu" and j["engine"]["nodes"] > 0 and j["engine"]["file_bytes"] > 0, j["engine"]
assert j["timer"] == "steady_clock" and j["time_limited"] is False
assert "context_bytes" in j["device_memory"] and j["build"]["kiln_version"]
ld = j["load_ms"]
assert ld["engine_file"] > 0 and ld["context"] >= 0 and abs(ld["total"] - ld["engine_file"] - ld["context"]) < 1e-9, ld
print("ok")' "$W/bench.json"
  check bench_profile_fields 0 "^ok$" -- python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
p = j["profile"]
layers, ops = p["layers"], p["ops"]
assert p["runs"] == 3 and len(layers) == j["engine"]["nodes"], (p["runs"], len(layers))
ms = [l["ms"] for l in layers]
assert ms == sorted(ms, reverse=True) and min(ms) >= 0, ms
assert [l["rank"] for l in layers] == list(range(1, len(layers) + 1))
assert abs(sum(ms) - p["total_ms"]) < 1e-9 and abs(layers[-1]["cumulative"] - 1) < 1e-9, layers[-1]
assert all(l["placement"] == "cpu" and l["op"] and l["name"] for l in layers), layers
assert sum(o["count"] for o in ops) == len(layers) and abs(sum(o["ms"] for o in ops) - p["total_ms"]) < 1e-9, ops
print("ok")' "$W/bench_profile.json"
fi
check bench_iters_zero 1 "--iters must be at least 1, got 0" -- "$KILN" bench "$W/cnn.kiln" --iters 0
check bench_iters_text 1 "iters" -- "$KILN" bench "$W/cnn.kiln" --iters many
check bench_warmup_negative 1 "--warmup must be 0 or more" -- "$KILN" bench "$W/cnn.kiln" --warmup -1
check bench_unknown_shape 1 "--shapes names input 'nope' but the engine's inputs are 'image'" -- "$KILN" bench "$W/cnn.kiln" --shapes nope:1x3x32x32
check bench_bad_shape_spec 1 "expected NAME:DIMS" -- "$KILN" bench "$W/cnn.kiln" --shapes 4x3x32x32
check bench_bad_dims 1 "not a dim" -- "$KILN" bench "$W/cnn.kiln" --shapes image:4xAx32x32
check bench_outside_profile 1 "outside optimization profile" -- "$KILN" bench "$W/cnn.kiln" --shapes image:9x3x32x32
check bench_fixed_dim 1 "dim 2 must be 32" -- "$KILN" bench "$W/cnn.kiln" --shapes image:4x3x31x32
check bench_shape_input_conflict 1 "give one or the other" -- "$KILN" bench "$W/cnn.kiln" --shapes image:4x3x32x32 --input image="$ROOT/models/tiny_cnn.input.npy"
check bench_input_dtype 1 "wants f32 but the file holds i64" -- "$KILN" bench "$W/cnn.kiln" --input image="$FX/image_i64.npy"
check bench_onnx 1 "build one first" -- "$KILN" bench "$CNN"
check bench_missing_engine 1 "does not exist" -- "$KILN" bench "$W/none.kiln"
check bench_corrupt_engine 1 "checksum" -- "$KILN" bench "$W/flip.kiln"

# kiln bench on a CUDA engine, where this machine can run one (the GPU machine): CUDA-event timing, device
# buffers, CUDA graphs on/off, per-layer profile with GPU placement.
if "$KILN" doctor --json 2>/dev/null | grep -q '"cuda_backend": true'; then
  check gpu_build 0 "built" -- "$KILN" build "$CNN" -o "$W/cnn_gpu.kiln" --backend cuda --shapes image:1x3x32x32,4x3x32x32,8x3x32x32
  check gpu_build_fallback 0 "cpu fallback: node 'determinant' \\(Det\\): the CUDA backend has no kernel for Det" -- "$KILN" build "$FX/det_fallback.onnx" -o "$W/det_gpu.kiln" --backend cuda
  check gpu_build_fallback_quiet 0 "cpu fallback: node 'determinant'" -- "$KILN" build "$FX/det_fallback.onnx" -o "$W/det_gpu.kiln" --backend cuda -q
  check gpu_inspect_fallback 0 "CPU fallback: 1 node\\(s\\).*" -- "$KILN" inspect "$W/det_gpu.kiln"
  check gpu_build_no_fallback 1 "--no-cpu-fallback: 1 node\\(s\\).*'determinant' \\(Det\\)" -- "$KILN" build "$FX/det_fallback.onnx" -o "$W/det_gpu2.kiln" --backend cuda --no-cpu-fallback
  check gpu_inspect_no_fallback 0 "CPU fallback: none" -- "$KILN" inspect "$W/cnn_gpu.kiln"
  check gpu_bench_text 0 "CUDA graphs on" -- "$KILN" bench "$W/cnn_gpu.kiln" --iters 20 --warmup 3
  check gpu_bench_json 0 "\"timer\": \"cuda_events\"" -- bash -c "\"$KILN\" bench \"$W/cnn_gpu.kiln\" --json --iters 30 --warmup 3 --shapes image:7x3x32x32 | tee \"$W/bench_gpu.json\""
  check gpu_bench_no_graph 0 "\"cuda_graphs\": false" -- "$KILN" bench "$W/cnn_gpu.kiln" --json --iters 10 --no-cuda-graph
  check gpu_bench_profile 0 "per op type" -- "$KILN" bench "$W/cnn_gpu.kiln" --iters 5 --profile --profile-runs 3
  check gpu_bench_input 0 "\"batch\": 3," -- "$KILN" bench "$W/cnn_gpu.kiln" --json --iters 5 --input image="$ROOT/models/tiny_cnn.input.npy"
  check gpu_bench_outside_profile 1 "outside optimization profile" -- "$KILN" bench "$W/cnn_gpu.kiln" --shapes image:9x3x32x32
  if command -v python3 >/dev/null; then
    check gpu_bench_json_fields 0 "^ok$" -- python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
l, m = j["latency_ms"], j["device_memory"]
assert j["iterations"] == 30 and j["batch"] == 7 and j["engine"]["backend"] == "cuda" and j["engine"]["cuda_graphs"], j["engine"]
assert 0 < l["min"] <= l["median"] <= l["p99"] <= l["max"], l
assert j["host_ms"]["median"] > 0 and j["build"]["gpu"], j["build"]
assert m["io_bytes"] >= 7 * 3 * 32 * 32 * 4 and m["total_bytes"] >= m["io_bytes"] + m["context_bytes"], m
assert m.get("process_delta_bytes", 1) > 0, m
print("ok")' "$W/bench_gpu.json"
  fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
