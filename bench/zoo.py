#!/usr/bin/env python3
"""kiln on the zoo (bench/zoo_models.py, 20+ architectures) against torch eager and torch.compile(mode=
"reduce-overhead"), f16, batch 1 and 8, in the same run: latency, correctness (cosine vs torch f32), build time,
device memory and kiln's top kernels.

On the GPU machine (kiln built in build/; /opt/torch/.venv python):
    python3 bench/zoo.py export [--models a,b]     # ONNX + inputs + torch f32 references (CPU-heavy, GPU briefly)
    python3 bench/zoo.py kiln   [--models a,b]     # kiln build --fp16, check, bench --profile
    python3 bench/zoo.py torch  [--models a,b]     # torch eager + reduce-overhead timing, one worker per model
    python3 bench/zoo.py report                    # the table (also written after every step)
    python3 bench/zoo.py all    [--models a,b]     # the three steps in order
A run that does not fit one call is split with --models (or --chunk K/N) and --merge, which adds to the day's
zoo-DATE.json in --out instead of starting it afresh. --torch-baseline FILE reuses the torch rows of an earlier
zoo JSON when its GPU model and torch version are this run's (each such row says so); the table to report is
timed side by side, without it.
"""
import argparse
import datetime
import json
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_latency as bl  # noqa: E402  (shared helpers: subprocess, CUDA-event timing, stats)

BATCHES = (1, 8)
TORCH_MODES = ("eager", "reduce-overhead")
NUMPY = {"f32": "float32", "f16": "float16", "i64": "int64", "i32": "int32", "bool": "bool"}


def log(msg):
    bl.log(msg)


def names_for(args):
    import zoo_models
    names = list(zoo_models.ZOO) if args.models == "all" else args.models.split(",")
    for n in names:
        if n not in zoo_models.ZOO:
            sys.exit(f"error: unknown model '{n}'; the zoo has {','.join(zoo_models.ZOO)}")
    if args.chunk:
        k, n = (int(x) for x in args.chunk.split("/"))
        names = names[k - 1::n]
    return names


# ------------------------------------------------------------------------------------------------------------------
# Step 1: export (torch on the CPU), inputs, torch f32 references on the GPU (TF32 off)

def export_one(name, mdir, batches):
    import numpy as np
    import torch
    import zoo_models
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model, dims, kind, category = zoo_models.build(name)
    info = {"category": category, "inputs": {k: v for k, v in dims.items()}, "kind": kind}
    path = os.path.join(mdir, name + ".onnx")
    example = tuple(zoo_models.make_inputs(dims, kind, 2, 7).values())
    with torch.no_grad():
        outs = zoo_models.flat_outputs(model(*example))
    out_names = [f"output_{i}" for i in range(len(outs))]
    dyn = {n: {0: "batch"} for n in list(dims) + out_names}
    t0 = time.time()
    errors = []
    for dynamo in (True, False):  # torch's default exporter first; the TorchScript one if it refuses the model
        try:
            with torch.no_grad():
                torch.onnx.export(model, example, path, input_names=list(dims), output_names=out_names,
                                  dynamic_axes=dyn, dynamo=dynamo)
            info["exporter"] = "dynamo" if dynamo else "torchscript"
            break
        except Exception as e:  # noqa: BLE001 - the other exporter gets its chance
            errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {bl.tail(repr(e), 400)}")
    else:
        raise RuntimeError("export failed: " + " | ".join(errors))
    info["export_s"] = round(time.time() - t0, 1)
    info["outputs"] = out_names
    gpu = model.cuda()
    for b in batches:
        ins = zoo_models.make_inputs(dims, kind, b, 100 + b)
        for n, x in ins.items():
            np.save(os.path.join(mdir, f"{name}.b{b}.{n}.npy"), x.numpy())
        with torch.no_grad():
            refs = zoo_models.flat_outputs(gpu(*[x.cuda() for x in ins.values()]))
        for i, r in enumerate(refs):
            np.save(os.path.join(mdir, f"{name}.b{b}.ref{i}.npy"), r.float().cpu().numpy())
    del gpu
    torch.cuda.empty_cache()
    with open(os.path.join(mdir, name + ".json"), "w") as f:
        json.dump(info, f)
    return info


def step_export(args, report):
    import torch
    report.doc["torch"] = torch.__version__
    for name in names_for(args):
        m = report.model(name)
        if os.path.exists(os.path.join(args.models_dir, name + ".json")) and not args.reexport:
            with open(os.path.join(args.models_dir, name + ".json")) as f:
                m.update(json.load(f))
            log(f"{name}: exported earlier")
            continue
        try:
            t = time.time()
            m.update(export_one(name, args.models_dir, BATCHES))
            report.clear(name, "export")
            log(f"{name}: exported ({m['exporter']}) in {time.time() - t:.1f} s")
        except Exception as e:  # noqa: BLE001 - recorded, the next model goes on
            report.error(name, "export", bl.tail(repr(e), 800))
            log(f"{name}: export FAILED: {bl.tail(repr(e), 300)}")
        report.write()


# ------------------------------------------------------------------------------------------------------------------
# Step 2: kiln build, correctness, bench with a per-layer profile

def cosine(a, b):
    import numpy as np
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    if not (np.isfinite(a).all()):
        return float("nan")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)


def centered_rel_err(a, b):
    """||a' - b'|| / ||b'|| with a', b' the outputs less their means. Logits that share a large offset give a cosine
    of 1.000000 whatever the rest does (ConvNeXt's random head did); this measures what varies."""
    import numpy as np
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    if not np.isfinite(a).all():
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a))


def engine_dtypes(kiln, engine):
    rc, out, _, _ = bl.run_cmd([kiln, "inspect", engine, "--json"], 120)
    return {d["name"]: d["dtype"] for d in json.loads(out).get("inputs", [])} if rc == 0 else {}


def input_files(args, name, m, b, dtypes, tmp):
    """NAME=FILE arguments for kiln, the saved inputs cast to the engine's input dtypes."""
    import numpy as np
    files = []
    for n in m["inputs"]:
        a = np.load(os.path.join(args.models_dir, f"{name}.b{b}.{n}.npy"))
        want = NUMPY.get(dtypes.get(n, ""), str(a.dtype))
        p = os.path.join(tmp, f"{name}.b{b}.{n}.{want}.npy")
        np.save(p, a.astype(want))
        files += ["--input", f"{n}={p}"]
    return files


def kiln_one(args, name, m):
    import numpy as np
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    engine = os.path.join(work, f"{name}.fp16.kiln")
    lo, hi = min(BATCHES), max(BATCHES)
    cmd = [args.kiln, "build", os.path.join(args.models_dir, name + ".onnx"), "-o", engine, "--backend", "cuda",
           "--fp16", "--reduced-precision-io", "--json", "-q"]
    for n, d in m["inputs"].items():
        s = "x".join(str(x) for x in d)
        cmd += ["--shapes", f"{n}:{lo}x{s},{hi}x{s},{hi}x{s}"]
    rc, out, err, secs = bl.run_cmd(cmd, args.build_timeout)
    m["build_s"] = round(secs, 2)
    if rc != 0:
        raise RuntimeError(f"kiln build ({secs:.0f} s): {bl.tail(err or out, 800)}")
    m["engine_bytes"] = os.path.getsize(engine)
    log(f"{name}: kiln build {secs:.1f} s")
    dtypes = engine_dtypes(args.kiln, engine)
    for b in BATCHES:
        k = m["kiln"].setdefault(str(b), {})
        files = input_files(args, name, m, b, dtypes, work)
        # Correctness: the engine's outputs against torch f32 on the same inputs.
        outdir = os.path.join(work, f"out_b{b}")
        rc, out, err, _ = bl.run_cmd([args.kiln, "run", engine, *files, "--output-dir", outdir, "-q"], 300)
        if rc != 0:
            k["check_error"] = bl.tail(err or out, 600)
        else:
            cos, err = [], []
            for i, o in enumerate(m["outputs"]):
                ref = np.load(os.path.join(args.models_dir, f"{name}.b{b}.ref{i}.npy"))
                got = np.load(os.path.join(outdir, f"{o}.npy"))
                same = got.shape == ref.shape
                cos.append(cosine(got, ref) if same else float("nan"))
                err.append(centered_rel_err(got, ref) if same else float("nan"))
            k["cosine"] = min(cos)
            k["rel_err"] = max(err)
        rc, out, err, _ = bl.run_cmd([args.kiln, "bench", engine, *files, "--json", "-q", "--iters", str(args.iters),
                                      "--warmup", str(args.warmup), "--max-seconds", str(args.kiln_max_s),
                                      "--profile", "--profile-runs", "3", "--top", "10"], args.kiln_max_s * 3 + 120)
        if rc != 0:
            k["error"] = bl.tail(err or out, 600)
            log(f"{name} b{b}: kiln bench FAILED: {k['error'][:300]}")
            continue
        j = bl.parse_json_output(out)
        k.update({"latency_ms": j["latency_ms"], "device_memory": j.get("device_memory", {}),
                  "execution": j.get("execution", {}), "load_ms": j.get("load_ms", {})})
        p = j.get("profile", {})
        k["top_ops"] = [{"op": o["op"], "count": o["count"], "ms": round(o["ms"], 4), "share": round(o["share"], 3)}
                        for o in p.get("ops", [])[:6]]
        k["top_layers"] = [{"name": l["name"], "op": l["op"], "tactic": l.get("tactic", ""),
                            "ms": round(l["ms"], 4), "share": round(l["share"], 3)} for l in p.get("layers", [])[:6]]
        k["profile_total_ms"] = p.get("total_ms")
        k["layers"] = len(p.get("layers", []))
        log(f"{name} b{b}: kiln {k['latency_ms']['median']:.3f} ms, cosine {k.get('cosine', float('nan')):.6f}")


def step_kiln(args, report):
    if not os.path.exists(args.kiln):
        sys.exit(f"error: kiln binary '{args.kiln}' not found (cmake --build build --target kiln_cli)")
    for name in names_for(args):
        m = report.model(name)
        if "outputs" not in m:
            report.error(name, "kiln", "not exported (run the export step first)")
            continue
        if report.past_deadline():
            report.error(name, "kiln", "skipped: --deadline-s used up")
            continue
        m["kiln"] = {}
        try:
            kiln_one(args, name, m)
            report.clear(name, "kiln")
        except Exception as e:  # noqa: BLE001
            report.error(name, "kiln", bl.tail(str(e), 800))
            log(f"{name}: kiln FAILED: {bl.tail(str(e), 300)}")
        report.write()


# ------------------------------------------------------------------------------------------------------------------
# Step 3: torch, one worker process per model (a crash or a hung compile costs one model)

def torch_worker(args):
    import numpy as np
    import torch
    import zoo_models
    torch.backends.cudnn.benchmark = True
    name = args.models
    model, dims, kind, _ = zoo_models.build(name)
    model = model.to("cuda", torch.float16)
    rows = []
    modes = args.torch_modes.split(",")

    def save():
        with open(args.worker_out + ".tmp", "w") as f:
            json.dump(rows, f)
        os.replace(args.worker_out + ".tmp", args.worker_out)

    for mode in modes:
        fn = model if mode == "eager" else torch.compile(model, mode="reduce-overhead", dynamic=False)
        for b in BATCHES:
            row = {"model": name, "mode": mode, "batch": b}
            try:
                ins = []
                for n in dims:
                    x = torch.from_numpy(np.load(os.path.join(args.models_dir, f"{name}.b{b}.{n}.npy"))).cuda()
                    ins.append(x.half() if x.is_floating_point() else x)
                with torch.inference_mode():
                    t0 = time.time()
                    if mode == "reduce-overhead":
                        torch.compiler.cudagraph_mark_step_begin()
                    fn(*ins)
                    torch.cuda.synchronize()
                    row["first_call_s"] = round(time.time() - t0, 2)
                    if args.warm_only:  # fills torch's compile caches for a later timed run
                        rows.append(row)
                        continue
                    torch.cuda.reset_peak_memory_stats()
                    times, _ = bl.cuda_time(lambda: fn(*ins), args.iters, args.warmup,
                                            mark_step=(mode == "reduce-overhead"))
                row["latency_ms"] = bl.stats(times)
                row["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
            except Exception as e:  # noqa: BLE001
                row["error"] = bl.tail(f"{type(e).__name__}: {e}", 600)
            rows.append(row)
            save()
        if mode != "eager":
            torch._dynamo.reset()
    save()


def warm_compile_caches(args, names):
    """torch.compile's first call per shape costs most of a model's torch time, and it is CPU work: with
    --warm-parallel N, N workers compile every model first (nothing timed), so the timed workers that follow, one at
    a time, find inductor's caches warm."""
    import subprocess
    pending = list(names)
    running = []
    t0 = time.time()
    while pending or running:
        while pending and len(running) < args.warm_parallel:
            name = pending.pop(0)
            cmd = [sys.executable, os.path.abspath(__file__), "torch-worker", "--models", name, "--models-dir",
                   args.models_dir, "--worker-out", os.path.join(args.work, f"warm-{name}.json"),
                   "--torch-modes", "reduce-overhead", "--warm-only"]
            running.append((name, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                   start_new_session=True)))
        for name, p in list(running):
            if p.poll() is not None:
                running.remove((name, p))
        if time.time() - t0 > args.torch_timeout:
            for _, p in running:
                p.kill()
            break
        time.sleep(0.5)
    log(f"torch.compile caches warmed for {len(names)} models in {time.time() - t0:.0f} s")


def step_torch(args, report):
    baseline = load_baseline(args, report)
    modes = args.torch_modes.split(",")
    todo = [n for n in names_for(args) if "outputs" in report.model(n)]
    if args.warm_parallel and "reduce-overhead" in modes:
        warm_compile_caches(args, [n for n in todo if baseline is None or
                                   not all((n, mo, b) in baseline for mo in modes for b in BATCHES)])
    for name in names_for(args):
        m = report.model(name)
        if "outputs" not in m:
            continue
        if baseline is not None and all((name, mo, b) in baseline for mo in modes for b in BATCHES):
            report.set_torch_rows(name, [dict(baseline[(name, mo, b)], recorded=args.torch_baseline)
                                         for mo in modes for b in BATCHES])
            log(f"{name}: torch rows reused from {args.torch_baseline}")
            report.write()
            continue
        left = report.time_left()
        if left < 30:
            report.set_torch_rows(name, [{"model": name, "mode": mo, "batch": b, "error": "skipped: --deadline-s"}
                                         for mo in modes for b in BATCHES])
            continue
        out = os.path.join(args.work, f"torch-{name}.json")
        if os.path.exists(out):
            os.remove(out)
        cmd = [sys.executable, os.path.abspath(__file__), "torch-worker", "--models", name, "--models-dir",
               args.models_dir, "--worker-out", out, "--iters", str(args.iters), "--warmup", str(args.warmup),
               "--torch-modes", args.torch_modes]
        rc, _, err, secs = bl.run_cmd(cmd, min(left, args.torch_timeout), live_stdout=True,
                                      env={**os.environ, "KILN_BENCH_T0": str(bl.T0)})
        rows = json.load(open(out)) if os.path.exists(out) else []
        have = {(r["mode"], r["batch"]) for r in rows}
        rows += [{"model": name, "mode": mo, "batch": b,
                  "error": ("timed out" if rc == 124 else f"worker exited {rc}") + ": " + bl.tail(err, 300)}
                 for mo in modes for b in BATCHES if (mo, b) not in have]
        report.set_torch_rows(name, rows)
        log(f"{name}: torch {secs:.0f} s: " + ", ".join(
            f"{r['mode']} b{r['batch']} " + (f"{r['latency_ms']['median']:.3f} ms" if "latency_ms" in r else "error")
            for r in rows))
        report.write()


def load_baseline(args, report):
    """(model, mode, batch) -> torch row of an earlier run of the same GPU model and torch version, or None."""
    if not args.torch_baseline:
        return None
    import torch
    with open(args.torch_baseline) as f:
        doc = json.load(f)
    if doc.get("gpu") != report.doc["gpu"] or doc.get("torch") != torch.__version__:
        sys.exit(f"error: --torch-baseline {args.torch_baseline} was timed on {doc.get('gpu')} with torch "
                 f"{doc.get('torch')}; this run has {report.doc['gpu']} and torch {torch.__version__}")
    return {(r["model"], r["mode"], r["batch"]): r for r in doc.get("torch_rows", [])
            if "latency_ms" in r and not r.get("recorded")}


# ------------------------------------------------------------------------------------------------------------------
# The report

class Report:
    def __init__(self, args):
        self.args = args
        self.base = os.path.join(args.out, f"zoo-{datetime.date.today().isoformat()}")
        self.run = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv[1:]}
        if (args.merge or args.step == "report") and os.path.exists(self.base + ".json"):
            with open(self.base + ".json") as f:
                self.doc = json.load(f)
        else:
            self.doc = {"date": datetime.date.today().isoformat(), "gpu": bl.gpu_name(), "commit": bl.git_commit(),
                        "torch": None, "batches": list(BATCHES), "models": {}, "torch_rows": [], "errors": [],
                        "runs": []}
        self.doc["runs"].append(self.run)

    def time_left(self):
        return bl.T0 + self.args.deadline_s - time.time()

    def past_deadline(self):
        return self.time_left() < 20

    def model(self, name):
        return self.doc["models"].setdefault(name, {"kiln": {}})

    def error(self, model, step, message):
        self.clear(model, step)
        self.doc["errors"].append({"model": model, "step": step, "message": message})

    def clear(self, model, step):
        self.doc["errors"] = [e for e in self.doc["errors"] if (e["model"], e["step"]) != (model, step)]

    def set_torch_rows(self, name, rows):
        self.doc["torch_rows"] = [r for r in self.doc["torch_rows"] if r["model"] != name] + rows

    def torch_row(self, name, mode, b):
        return next((r for r in self.doc["torch_rows"] if (r["model"], r["mode"], r["batch"]) == (name, mode, b)),
                    None)

    def write(self):
        os.makedirs(self.args.out, exist_ok=True)
        self.run["wall_s"] = round(time.time() - bl.T0, 1)
        for ext, text in ((".json", json.dumps(self.doc, indent=1)), (".md", self.markdown())):
            with open(self.base + ext + ".tmp", "w") as f:
                f.write(text)
            os.replace(self.base + ext + ".tmp", self.base + ext)

    def rows(self):
        """One dict per (model, batch) with what the table shows."""
        out = []
        for name, m in self.doc["models"].items():
            for b in self.doc["batches"]:
                k = m.get("kiln", {}).get(str(b), {})
                t = {mo: self.torch_row(name, mo, b) for mo in TORCH_MODES}
                ms = lambda r: r["latency_ms"]["median"] if r and "latency_ms" in r else None
                kms = k.get("latency_ms", {}).get("median")
                out.append({"model": name, "category": m.get("category", ""), "batch": b, "kiln": kms,
                            "eager": ms(t["eager"]), "ro": ms(t["reduce-overhead"]),
                            "recorded": any(r and r.get("recorded") for r in t.values()),
                            "cosine": k.get("cosine"), "rel_err": k.get("rel_err"), "build_s": m.get("build_s"),
                            "kiln_mb": k.get("device_memory", {}).get("total_bytes"),
                            "eager_mb": (t["eager"] or {}).get("peak_memory_bytes"),
                            "top": k.get("top_ops", []), "execution": k.get("execution", {})})
        return out

    def markdown(self):
        d = self.doc
        f = lambda v, p=3: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{p}f}"
        g = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1e}"
        mb = lambda v: "—" if not v else f"{v / 2**20:.0f}"
        rows = self.rows()
        sp = [r["ro"] / r["kiln"] for r in rows if r["kiln"] and r["ro"]]
        geo = math.exp(sum(math.log(x) for x in sp) / len(sp)) if sp else None
        lines = [f"# kiln on the zoo — {d['date']}, {d['gpu']}, commit {d['commit']}, torch {d['torch'] or '?'}", "",
                 "kiln `build --fp16 --reduced-precision-io` (one profile, batch 1..8) against torch f16 eager and"
                 " torch.compile(mode=\"reduce-overhead\", dynamic=False), inputs identical, median of timed"
                 " iterations (CUDA events, each waited for). Cosine: kiln f16 vs torch f32 (TF32 off), the worst"
                 " output; rel err: the L2 norm of the difference over the reference's, both less their means (a"
                 " shared offset cannot hide an error), the worst output. Speedup = torch ms / kiln ms (> 1: kiln faster). kiln MB: engine + context + I/O.",
                 "", "Runs: " + "; ".join(f"`python3 bench/zoo.py {' '.join(r['argv'])}` ({r.get('wall_s', 0):.0f} s)"
                                           for r in d["runs"]), "",
                 f"**Geometric mean speedup vs reduce-overhead: {f(geo, 2)}x** over {len(sp)} configurations; "
                 f"kiln slower in {sum(1 for x in sp if x < 1)}.", "",
                 "| model | kind | batch | kiln ms | eager ms | reduce-overhead ms | vs eager | vs RO | cosine |"
                 " rel err | build s | kiln MB | eager peak MB | kiln's top ops (share) |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            ve = f(r["eager"] / r["kiln"], 2) if r["kiln"] and r["eager"] else "—"
            vr = f(r["ro"] / r["kiln"], 2) if r["kiln"] and r["ro"] else "—"
            top = ", ".join(f"{o['op']} {o['share'] * 100:.0f}%" for o in r["top"][:4])
            rec = " (recorded)" if r["recorded"] else ""
            lines.append(f"| {r['model']} | {r['category']} | {r['batch']} | {f(r['kiln'])} | {f(r['eager'])}{rec} |"
                         f" {f(r['ro'])}{rec} | {ve} | {vr} | {f(r['cosine'], 6)} | {g(r['rel_err'])} | {f(r['build_s'], 1)} |"
                         f" {mb(r['kiln_mb'])} | {mb(r['eager_mb'])} | {top} |")
        errs = [f"{e['step']} {e['model']}: {e['message']}" for e in d["errors"]]
        errs += [f"torch {r['model']} {r['mode']} b{r['batch']}: {r['error']}" for r in d["torch_rows"] if "error" in r]
        for name, m in d["models"].items():
            for b, k in m.get("kiln", {}).items():
                for key in ("error", "check_error"):
                    if key in k:
                        errs.append(f"kiln {key.replace('_', ' ')} {name} b{b}: {k[key]}")
        if errs:
            lines += ["", "## Failures and skips", ""] + [f"- {e.replace(chr(10), ' ')[:500]}" for e in errs]
        return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["export", "kiln", "torch", "report", "all", "torch-worker"])
    ap.add_argument("--models", default="all", help="comma-separated zoo names (default all)")
    ap.add_argument("--chunk", default="", help="K/N: every N-th model starting at the K-th (1-based)")
    ap.add_argument("--merge", action="store_true", help="add to today's zoo-DATE.json in --out")
    ap.add_argument("--torch-baseline", default="", help="an earlier zoo JSON whose torch rows to reuse")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "bench", "models", "zoo"))
    ap.add_argument("--reexport", action="store_true")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "bin", "kiln"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kiln-zoo"))
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--kiln-max-s", type=float, default=4)
    ap.add_argument("--build-timeout", type=float, default=180)
    ap.add_argument("--torch-timeout", type=float, default=300)
    ap.add_argument("--deadline-s", type=float, default=560)
    ap.add_argument("--torch-modes", default=",".join(TORCH_MODES),
                    help="torch modes to time (default eager,reduce-overhead)")
    ap.add_argument("--warm-parallel", type=int, default=0,
                    help="compile torch models N at a time before the timed workers run (default 0: off)")
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.chunk and (len(args.chunk.split("/")) != 2 or not all(x.isdigit() for x in args.chunk.split("/"))):
        ap.error("--chunk takes K/N, e.g. 2/3")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.step == "torch-worker":
        torch_worker(args)
        return 0
    os.makedirs(args.models_dir, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    report = Report(args)
    if args.step in ("export", "all"):
        step_export(args, report)
    elif args.step != "report":
        # Steps after export read what it recorded beside the models.
        for name in names_for(args):
            p = os.path.join(args.models_dir, name + ".json")
            if os.path.exists(p):
                with open(p) as f:
                    report.model(name).update(json.load(f))
    if args.step in ("kiln", "all"):
        step_kiln(args, report)
    if args.step in ("torch", "all"):
        import torch
        report.doc["torch"] = torch.__version__
        step_torch(args, report)
    report.write()
    print(open(report.base + ".md").read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
