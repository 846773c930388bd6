#!/usr/bin/env python3
"""The kiln Python layer's cost on the GPU: per-call host overhead of ctx.infer with torch CUDA tensors over
the C++ enqueue, at batch 1 on ResNet-50 (goal: under 15 us), and 4 Python threads x own contexts (own torch
streams) vs one thread.

Host time per call is what the Python layer adds: runs are asynchronous, so a group of 8 calls started on an
idle GPU returns long before the GPU finishes, and (group time / 8) is the host cost of one call (median of 60
groups; a longer loop fills the launch queue and then times the GPU instead). The same context is timed three
ways: ctx.infer (DLPack bind + output allocation + enqueue), a Python loop of ctx.enqueue, and N enqueues in
one C++ loop (ExecutionContext.enqueue_repeated: no Python per call). GPU time per inference (CUDA events)
is reported beside them.

    python3 bench/python_overhead.py --onnx /tmp/m/resnet50.onnx --out $OUT
Writes OUT/python_overhead.json and .md.
"""
import argparse
import json
import os
import statistics
import subprocess
import threading
import time

import torch

import kiln


def host_us_per_call(fn, n=8, repeats=60):
    """Median over REPEATS of the host time of N back-to-back calls, per call, each group started with the GPU
    drained. N stays small so the launch queue never fills: with a full queue a call waits for the GPU, and the
    host time measured is the GPU's (both paths then read the same, hiding the overhead)."""
    samples = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - t0) / n * 1e6)
    torch.cuda.synchronize()
    return statistics.median(samples)


def gpu_ms_per_call(fn, n):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn(n)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / n


def pieces_us(torch, x, outputs, stream, n=2000):
    """Host cost of the pieces a ctx.infer call is made of, each alone in a loop: where the overhead goes."""
    y = next(iter(outputs.values()))
    dims, dtype, device = tuple(y.shape), y.dtype, x.device

    def per_call(fn):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return round((time.perf_counter() - t0) / n * 1e6, 3)

    pieces = {
        "piece_us_torch_empty_output": per_call(lambda: torch.empty(dims, dtype=dtype, device=device)),
        "piece_us_tensor_fields": per_call(lambda: (x.data_ptr(), x.shape, x.dtype, x.get_device(), x.is_contiguous())),
        "piece_us_dlpack_export": per_call(lambda: x.__dlpack__(stream=-1)),
        "piece_us_current_stream": per_call(lambda: torch._C._cuda_getCurrentRawStream(device.index)),
    }
    torch.cuda.synchronize()
    return pieces


def cli_bench(kiln_cli, engine, out_dir):
    """The same engine timed by kiln bench (its own stream and inputs): the GPU time per inference both ways."""
    if not os.path.exists(kiln_cli):
        return {"cli_bench": f"skipped: no {kiln_cli}"}
    path = os.path.join(out_dir, "python_overhead_engine.kiln")
    engine.save(path)
    try:
        r = subprocess.run([kiln_cli, "bench", path, "--json", "-q", "--iters", "200", "--shapes", "image:1x3x224x224"],
                           capture_output=True, text=True, timeout=300)
        report = json.loads(r.stdout)
        return {"cli_bench_median_ms": report["latency_ms"]["median"]}
    except Exception as e:  # the overhead numbers stand without it; say why it is missing
        return {"cli_bench": f"failed: {e}"}
    finally:
        os.remove(path)


def export_resnet(path):
    import torchvision

    m = torchvision.models.resnet50(weights=None).eval()
    torch.onnx.export(m, (torch.randn(1, 3, 224, 224),), path, input_names=["image"], output_names=["output"],
                      dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", default="/tmp/m/resnet50.onnx")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/kiln-out"))
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--thread-seconds", type=float, default=5.0)
    ap.add_argument("--precision", choices=("f16", "f32"), default="f16")
    ap.add_argument("--kiln", default="build/bin/kiln", help="the CLI, to time the same engine with kiln bench")
    args = ap.parse_args()
    if not os.path.exists(args.onnx):
        os.makedirs(os.path.dirname(args.onnx) or ".", exist_ok=True)
        export_resnet(args.onnx)
    t0 = time.time()
    engine = kiln.build(args.onnx, backend="cuda", fp16=args.precision == "f16", progress=False,
                        shapes={"image": [(1, 3, 224, 224), (1, 3, 224, 224), (4, 3, 224, 224)]})
    build_s = time.time() - t0
    ctx = engine.create_context()
    x = torch.randn(1, 3, 224, 224, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    keep = None

    def infer_loop(n):
        nonlocal keep
        for _ in range(n):
            keep = ctx.infer({"image": x})

    def infer_out_loop(n):
        out = keep
        for _ in range(n):
            ctx.infer({"image": x}, out=out)

    def py_enqueue_loop(n):
        for _ in range(n):
            ctx.enqueue(stream)

    def cpp_enqueue_loop(n):
        ctx._native.enqueue_repeated(n, stream)

    infer_loop(50)  # warm up: CUDA graphs captured for the addresses the loop alternates between
    infer_out_loop(20)
    torch.cuda.synchronize()
    info = ctx.last_run_info()
    n = args.calls
    res = {
        "gpu": torch.cuda.get_device_name(), "model": os.path.basename(args.onnx), "precision": args.precision,
        "batch": 1, "build_s": round(build_s, 1), "calls": n, "host_calls_per_group": 8,
        "cuda_graph": info["cuda_graph"],
        "host_us_infer": host_us_per_call(infer_loop),
        "host_us_infer_out": host_us_per_call(infer_out_loop),
        "host_us_python_enqueue": host_us_per_call(py_enqueue_loop),
        "host_us_cpp_enqueue": host_us_per_call(cpp_enqueue_loop),
        "gpu_ms_infer": gpu_ms_per_call(infer_loop, n),
        "gpu_ms_cpp_enqueue": gpu_ms_per_call(cpp_enqueue_loop, n),
    }
    res["overhead_us_infer_over_cpp_enqueue"] = res["host_us_infer"] - res["host_us_cpp_enqueue"]
    res["overhead_us_infer_out_over_cpp_enqueue"] = res["host_us_infer_out"] - res["host_us_cpp_enqueue"]
    res["goal_us"] = 15.0
    res["meets_goal"] = res["overhead_us_infer_over_cpp_enqueue"] < 15.0
    res.update(pieces_us(torch, x, keep, stream))
    res.update(cli_bench(args.kiln, engine, args.out))

    # Threads: each with its own context and torch stream, counting inferences for a fixed time.
    def throughput(threads):
        counts = [0] * threads
        stop = threading.Event()
        ready = threading.Barrier(threads + 1)

        def work(i):
            c = engine.create_context()
            s = torch.cuda.Stream()
            xi = torch.randn(1, 3, 224, 224, device="cuda")
            with torch.cuda.stream(s):
                for _ in range(10):
                    c.infer({"image": xi})
                s.synchronize()
                ready.wait()
                while not stop.is_set():
                    c.infer({"image": xi})
                    counts[i] += 1
                    if counts[i] % 16 == 0:
                        s.synchronize()  # keep the queue bounded so the count is work done
                s.synchronize()

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        ready.wait()
        t0 = time.perf_counter()
        time.sleep(args.thread_seconds)
        stop.set()
        for t in ts:
            t.join()
        return sum(counts) / (time.perf_counter() - t0)

    one = throughput(1)
    four = throughput(4)
    res.update({"threads1_per_s": round(one, 1), "threads4_per_s": round(four, 1), "threads4_speedup": round(four / one, 2)})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "python_overhead.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "python_overhead.md"), "w") as f:
        f.write(f"# kiln Python overhead, {res['model']} {res['precision']} batch 1 on {res['gpu']}\n\n"
                "| measure | value |\n|---|---|\n")
        for k, v in res.items():
            f.write(f"| {k} | {round(v, 2) if isinstance(v, float) else v} |\n")
    print(f"python overhead: ctx.infer {res['host_us_infer']:.1f} us/call host, C++ enqueue {res['host_us_cpp_enqueue']:.1f} "
          f"us/call, overhead {res['overhead_us_infer_over_cpp_enqueue']:.1f} us (goal < 15: "
          f"{'met' if res['meets_goal'] else 'MISSED'}); with out= {res['overhead_us_infer_out_over_cpp_enqueue']:.1f} us; "
          f"GPU {res['gpu_ms_infer']:.3f} ms/inference; 4 threads {res['threads4_speedup']}x of 1 thread "
          f"({res['threads1_per_s']} -> {res['threads4_per_s']}/s)")


if __name__ == "__main__":
    main()
