#!/usr/bin/env python3
"""Latency of kiln engines against torch eager, torch.compile() and torch.compile(mode="reduce-overhead").

One command on the GPU machine (python3 with torch, torchvision, transformers, onnx; kiln built in build/):
    python3 bench/bench_latency.py [--models resnet50,vit_b_16,bert_base,gpt2] [--batches 1,32] [--precision fp16]
Writes OUT/perf-DATE.json and OUT/perf-DATE.md (OUT: bench/results).

Steps, cheapest first so that a run cut short still has a full kiln-vs-eager table:
  1. export each model with bench/export_models.py's definitions (skipped when MODELS_DIR/NAME.onnx exists, unless
     --reexport) and save the benchmark inputs (seeded) as .npy, in the engine's input dtypes;
  2. kiln build --backend cuda --PRECISION with one profile over batch 1..max (seq fixed: BERT 128, GPT-2 512);
     build time and engine size are recorded;
  3. kiln bench --json on the same inputs at every batch (CUDA events, median; --kiln-max-s caps a slow config);
  4. torch eager in one worker process for all models (f16 weights and float inputs, inference_mode, CUDA events,
     each iteration waited for like kiln bench does, median of --iters after --warmup);
  5. torch.compile (dynamic=False: one specialised graph per batch, as kiln specialises per shape at run time) and
     then mode="reduce-overhead" (CUDA graphs), one worker per model, until the --deadline-s budget runs out.
     The first call per batch compiles; its wall time is recorded as the compile cost.
Each config's failure (export, build, bench, torch mode) is recorded with its message and the run continues; the
result files are rewritten after every step, so a run killed at the limit still leaves them.
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Per-sample dims of each model input (the batch dim comes first); sequence lengths as in export_models.py.
SPECS = {
    "resnet50": {"image": [3, 224, 224]},
    "vit_b_16": {"image": [3, 224, 224]},
    "bert_base": {"input_ids": [128], "attention_mask": [128]},
    "gpt2": {"input_ids": [512]},
}
TORCH_MODES = ("eager", "compile", "reduce-overhead")
PRECISION_FLAGS = {"f32": [], "tf32": ["--tf32"], "fp16": ["--fp16"], "bf16": ["--bf16"]}
NUMPY_DTYPES = {"f32": "float32", "f16": "float16", "f64": "float64", "i64": "int64", "i32": "int32",
                "bool": "bool", "u8": "uint8", "i8": "int8"}

# Workers log against the parent's clock, so one run reads as one timeline.
T0 = float(os.environ.get("KILN_BENCH_T0", time.time()))


def log(msg):
    print(f"[{time.time() - T0:7.1f} s] {msg}", flush=True)


def tail(text, n=600):
    text = (text or "").strip()
    return text if len(text) <= n else "..." + text[-n:]


def run_cmd(cmd, timeout, live_stdout=False, env=None):
    """Runs cmd in its own process group (killed whole on timeout). Returns (rc, stdout, stderr, seconds).
    live_stdout: the child's stdout goes straight to ours (progress lines), and "" is returned for it."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=None if live_stdout else subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env=env)
    try:
        out, err = p.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return 124, out or "", (err or "") + f"\n(timed out after {timeout:.0f} s)", time.time() - t0
    return p.returncode, out or "", err or "", time.time() - t0


# ------------------------------------------------------------------------------------------------------------------
# Torch side (imported lazily so the parent's argument errors and report writing never wait for torch)

def torch_dtype(precision):
    import torch
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)


def build_torch_model(name):
    """The same module export_models.py exports: fixed seed, random weights, fixed-arity wrapper."""
    sys.path.insert(0, HERE)
    import export_models as em
    import torch
    torch.manual_seed(0)
    model, input_names, make_inputs, dynamic_axes = em.MODELS[name]()
    wrapped = (em.OneInput if len(input_names) == 1 else em.TwoInputs)(model.eval()).eval()
    return wrapped, input_names, make_inputs, dynamic_axes


def export_model(name, models_dir, batches):
    """Exports NAME.onnx (as export_models.py does) and saves NAME.bB.INPUT.npy for every batch."""
    import numpy as np
    import torch
    model, input_names, make_inputs, dynamic_axes = build_torch_model(name)
    path = os.path.join(models_dir, name + ".onnx")
    info = {"path": path}
    if not os.path.exists(path):
        t0 = time.time()
        with torch.no_grad():
            torch.onnx.export(model, make_inputs(2), path, input_names=input_names, output_names=["output"],
                              dynamic_axes={**dynamic_axes, "output": {0: "batch"}})
        info["export_s"] = round(time.time() - t0, 2)
    for b in batches:
        torch.manual_seed(100 + b)
        for n, x in zip(input_names, make_inputs(b)):
            np.save(os.path.join(models_dir, f"{name}.b{b}.{n}.npy"), x.numpy())
    return info


def cuda_time(fn, iters, warmup, mark_step=False, deadline=None):
    """Median-ready per-iteration latencies (ms) with CUDA events, each iteration waited for (as kiln bench does)."""
    import torch
    for _ in range(warmup):
        if mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, host = [], []
    for i in range(iters):
        if deadline and i and time.time() > deadline:
            break
        if mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        t0 = time.perf_counter()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        host.append((time.perf_counter() - t0) * 1e3)
        times.append(start.elapsed_time(stop))
    return times, host


def stats(v):
    import numpy as np
    a = np.sort(np.asarray(v, dtype=np.float64))
    pct = lambda q: float(a[min(len(a), max(1, int(np.ceil(q * len(a))))) - 1])  # nearest rank, as kiln bench
    return {"median": float(np.median(a)), "mean": float(a.mean()), "p90": pct(0.9), "p99": pct(0.99),
            "min": float(a[0]), "max": float(a[-1]), "iterations": int(len(a))}


def torch_worker(args):
    """Runs the torch modes for the given models and batches; rewrites --worker-out after every config."""
    import numpy as np
    import torch
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolution, as users would
    if args.precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtype = torch_dtype(args.precision)
    deadline = args.deadline_at or None
    results = []

    def save():
        with open(args.worker_out + ".tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(args.worker_out + ".tmp", args.worker_out)

    for name in args.models.split(","):
        try:
            t0 = time.time()
            model, input_names, _, _ = build_torch_model(name)
            model = model.to("cuda", dtype)
            ready_s = time.time() - t0
        except Exception as e:  # noqa: BLE001 - recorded and the next model goes on
            for mode in args.modes.split(","):
                for b in args.batches_list:
                    results.append({"model": name, "mode": mode, "batch": b, "error": f"model setup: {tail(repr(e))}"})
            save()
            continue
        for mode in args.modes.split(","):
            fn_model = model
            try:
                if mode == "compile":
                    fn_model = torch.compile(model, dynamic=False)
                elif mode == "reduce-overhead":
                    fn_model = torch.compile(model, mode="reduce-overhead", dynamic=False)
            except Exception as e:  # noqa: BLE001
                for b in args.batches_list:
                    results.append({"model": name, "mode": mode, "batch": b, "error": f"torch.compile: {tail(repr(e))}"})
                save()
                continue
            for b in args.batches_list:
                row = {"model": name, "mode": mode, "batch": b, "model_setup_s": round(ready_s, 2)}
                if deadline and time.time() > deadline:
                    row["error"] = "skipped: --deadline-s budget used up"
                    results.append(row)
                    save()
                    continue
                try:
                    ins = []
                    for n in input_names:
                        x = torch.from_numpy(np.load(os.path.join(args.models_dir, f"{name}.b{b}.{n}.npy"))).cuda()
                        ins.append(x.to(dtype) if x.is_floating_point() else x)
                    with torch.inference_mode():
                        t0 = time.time()
                        if mode == "reduce-overhead":
                            torch.compiler.cudagraph_mark_step_begin()
                        fn_model(*ins)  # compiles for this batch (torch.compile modes)
                        torch.cuda.synchronize()
                        row["first_call_s"] = round(time.time() - t0, 2)
                        torch.cuda.reset_peak_memory_stats()
                        times, host = cuda_time(lambda: fn_model(*ins), args.iters, args.warmup,
                                                mark_step=(mode == "reduce-overhead"), deadline=deadline)
                    row["latency_ms"] = stats(times)
                    row["host_ms"] = stats(host)
                    row["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
                    if len(times) < args.iters:
                        row["note"] = f"deadline: {len(times)} of {args.iters} iterations"
                except Exception as e:  # noqa: BLE001
                    row["error"] = tail(f"{type(e).__name__}: {e}")
                results.append(row)
                save()
                log(f"torch {name} {mode} b{b}: " + (f"{row['latency_ms']['median']:.3f} ms" if "latency_ms" in row
                                                       else row["error"][:200]))
            del fn_model
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        del model
        torch.cuda.empty_cache()
    save()


# ------------------------------------------------------------------------------------------------------------------
# Parent: kiln steps, worker management, report

def git_commit():
    if os.environ.get("KILN_COMMIT"):
        return os.environ["KILN_COMMIT"]
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        if c.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return c.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def gpu_name():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def profile_args(name, max_batch, opt_batch):
    out = []
    for n, dims in SPECS[name].items():
        d = "x".join(str(x) for x in dims)
        out += ["--shapes", f"{n}:1x{d},{opt_batch}x{d},{max_batch}x{d}"]
    return out


def engine_input_dtypes(kiln, engine):
    rc, out, err, _ = run_cmd([kiln, "inspect", engine, "--json"], 120)
    if rc != 0:
        return {}
    return {d["name"]: d["dtype"] for d in json.loads(out).get("inputs", [])}


def convert_inputs(name, models_dir, batches, dtypes):
    """Rewrites the saved inputs in the engine's dtypes (kiln bench checks them); returns input names it could not."""
    import numpy as np
    bad = []
    for n in SPECS[name]:
        want = NUMPY_DTYPES.get(dtypes.get(n, ""))
        for b in batches:
            p = os.path.join(models_dir, f"{name}.b{b}.{n}.npy")
            if not want:
                bad.append(n)
                continue
            a = np.load(p)
            if a.dtype != np.dtype(want):
                np.save(p, a.astype(want))
    return sorted(set(bad))


def parse_json_output(out):
    return json.loads(out[out.index("{"):])


class Report:
    """perf-DATE.json/.md. With --merge, a run adds to (and per config replaces) what an earlier run of the same day
    wrote, so the compile modes can be timed in a second command when one does not fit the time limit."""

    def __init__(self, args):
        self.args = args
        self.stamp = datetime.date.today().isoformat()
        self.base = os.path.join(args.out, f"perf-{self.stamp}")
        self.run = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "argv": args.argv,
                    "phases_s": {}, "wall_s": 0}
        if args.merge and os.path.exists(self.base + ".json"):
            with open(self.base + ".json") as f:
                self.doc = json.load(f)
            if self.doc.get("precision") != args.precision:
                sys.exit(f"error: --merge: {self.base}.json holds precision {self.doc.get('precision')}, this run "
                         f"{args.precision}; use another --out")
            self.doc["batches"] = sorted(set(self.doc["batches"]) | set(args.batches_list))
        else:
            self.doc = {"date": self.stamp, "gpu": gpu_name(), "commit": git_commit(), "torch": None,
                        "precision": args.precision, "batches": args.batches_list, "iters": args.iters,
                        "warmup": args.warmup, "models": {}, "torch_rows": [], "errors": [], "runs": []}
        self.doc["runs"].append(self.run)

    def model(self, name):
        return self.doc["models"].setdefault(name, {"kiln": {}})

    def error(self, model, step, message):
        """Records one failed step; a later success of the same step (clear) removes it."""
        self.clear(model, step)
        self.doc["errors"].append({"model": model, "step": step, "message": message})

    def clear(self, model, step):
        self.doc["errors"] = [e for e in self.doc["errors"] if (e["model"], e["step"]) != (model, step)]

    def phase(self, name, seconds):
        self.run["phases_s"][name] = round(seconds, 1)

    def write(self):
        os.makedirs(self.args.out, exist_ok=True)
        self.run["wall_s"] = round(time.time() - T0, 1)
        base = self.base
        with open(base + ".json.tmp", "w") as f:
            json.dump(self.doc, f, indent=2)
        os.replace(base + ".json.tmp", base + ".json")
        with open(base + ".md.tmp", "w") as f:
            f.write(self.markdown())
        os.replace(base + ".md.tmp", base + ".md")
        return base

    def torch_row(self, name, mode, b):
        for r in self.doc["torch_rows"]:
            if r["model"] == name and r["mode"] == mode and r["batch"] == b:
                return r
        return None

    def markdown(self):
        d, a = self.doc, self.args
        ms = lambda r: r["latency_ms"]["median"] if r and "latency_ms" in r else None
        fmt = lambda v, p=3: "—" if v is None else f"{v:.{p}f}"
        mb = lambda v: "—" if v is None else f"{v / 2**20:.0f}"
        lines = [f"# kiln vs torch latency — {d['date']}, {d['gpu']}, commit {d['commit']}", "",
                 f"torch {d['torch'] or '?'}; precision {d['precision']} (kiln `build --{d['precision']}`"
                 f" where not f32; torch weights and float inputs in the same dtype); median of {d['iters']} timed"
                 f" iterations after {d['warmup']} warm-up, CUDA events, every iteration waited for (latency, not"
                 " pipelined throughput). torch: inference_mode, cudnn.benchmark on; torch.compile with dynamic=False"
                 " (one graph per batch). kiln engines: one profile over batch 1..max, inputs saved from torch and"
                 " given to `kiln bench --input` (fp16/bf16 engines are built with --reduced-precision-io, float I/O in the"
                 " compute dtype like torch's; with --model-io they keep f32 I/O and the casts are inside the timed run). Speedup = torch ms / kiln ms (> 1: kiln faster).", "",
                 "Commands (GPU machine, repository root):"] + [
                 f"- `python3 bench/bench_latency.py {' '.join(r['argv'])}`: {r['wall_s']:.0f} s"
                 f" ({', '.join(f'{k} {v:.0f} s' for k, v in r['phases_s'].items()) or 'nothing timed'})"
                 for r in d["runs"]] + ["",
                 "| model | batch | kiln ms | eager ms | compile ms | reduce-overhead ms | speedup vs eager | vs compile"
                 " | vs reduce-overhead |", "|---|---|---|---|---|---|---|---|---|"]
        for name, m in d["models"].items():
            for b in d["batches"]:
                k = m["kiln"].get(str(b), {})
                kms = k.get("latency_ms", {}).get("median")
                t = [ms(self.torch_row(name, mode, b)) for mode in TORCH_MODES]
                sp = [fmt(x / kms, 2) if x is not None and kms else "—" for x in t]
                note = " (time-capped: %d iters)" % k["iterations"] if k.get("time_limited") else ""
                lines.append(f"| {name} | {b} | {fmt(kms)}{note} | {' | '.join(fmt(x) for x in t)} | {' | '.join(sp)} |")
        lines += ["", "| model | batch | kiln build s | rebuild s (timing cache) | engine MB | kiln load ms | kiln device MB (process / engine+context+I/O) |"
                  " eager peak MB | compile peak MB | reduce-overhead peak MB | compile s (first call) |"
                  " reduce-overhead s (first call) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in d["models"].items():
            for b in d["batches"]:
                k = m["kiln"].get(str(b), {})
                mem = k.get("device_memory", {})
                peaks = [self.torch_row(name, mode, b) for mode in TORCH_MODES]
                lines.append(
                    f"| {name} | {b} | {fmt(m.get('build_s'), 1)} | {fmt(m.get('rebuild_s'), 1)}"
                    f"{'' if m.get('rebuild_identical', True) else ' (engine differs)'} | {mb(m.get('engine_bytes'))} | "
                    f"{fmt(k.get('load_ms', {}).get('total'), 0)} | "
                    f"{mb(mem.get('process_delta_bytes'))} / {mb(mem.get('total_bytes'))} | "
                    + " | ".join(mb(r.get("peak_memory_bytes")) if r else "—" for r in peaks) + " | "
                    + " | ".join(fmt(r.get("first_call_s"), 1) if r else "—" for r in peaks[1:]) + " |")
        lines += ["", "Build s: the first build, its timing cache empty (it times every tactic and writes the cache);"
                  " rebuild s: the same build reading that cache, whose engine is byte-identical unless marked.",
                  "Peak memory: torch.cuda.max_memory_allocated (weights + activations, allocator view) after the"
                  " first call; kiln: GPU memory the bench process took from before the engine was loaded to after"
                  " the run (weights, arena, I/O, library workspaces; not the CUDA context) / the engine's own count.",
                  "Load ms: `kiln bench`'s engine file load plus its first context (which uploads the weights), the CUDA"
                  " runtime already started.",
                  "Compile s: wall time of the first call per batch, i.e. what torch.compile costs before the first"
                  " result (inductor's cache in /tmp makes a second run of this script cheaper; first-run numbers"
                  " are the honest ones)."]
        errs = [f"{e['step']} {e['model']}: {e['message']}" for e in d["errors"]] + [f"torch {r['model']} {r['mode']} b{r['batch']}: {r['error']}" for r in d["torch_rows"]
                              if "error" in r]
        for name, m in d["models"].items():
            for b, k in m["kiln"].items():
                if "error" in k:
                    errs.append(f"kiln bench {name} b{b}: {k['error']}")
        if errs:
            lines += ["", "## Failures and skips", ""] + [f"- {e.replace(chr(10), ' ')[:400]}" for e in errs]
        return "\n".join(lines) + "\n"


def run_worker(args, report, models, modes, timeout, tag, deadline_at=0):
    """Starts a torch worker process; merges whatever rows it wrote (also after a crash or a timeout).
    deadline_at (epoch seconds, 0: none): the worker skips configs that would start after it."""
    out = os.path.join(args.work, f"torch-{tag}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--models", ",".join(models), "--modes",
           ",".join(modes), "--batches", args.batches, "--iters", str(args.iters), "--warmup", str(args.warmup),
           "--precision", args.precision, "--models-dir", args.models_dir, "--worker-out", out,
           "--deadline-at", str(deadline_at)]
    rc, _, se, secs = run_cmd(cmd, timeout, live_stdout=True, env={**os.environ, "KILN_BENCH_T0": str(T0)})
    rows = []
    if os.path.exists(out):
        with open(out) as f:
            rows = json.load(f)
    done = {(r["model"], r["mode"], r["batch"]) for r in rows}
    for name in models:
        for mode in modes:
            for b in args.batches_list:
                if (name, mode, b) not in done:
                    why = "timed out" if rc == 124 else f"worker exited {rc}"
                    rows.append({"model": name, "mode": mode, "batch": b, "error": f"{why} before this config: {tail(se, 400)}"})
    new = {(r["model"], r["mode"], r["batch"]) for r in rows}
    report.doc["torch_rows"] = [r for r in report.doc["torch_rows"] if (r["model"], r["mode"], r["batch"]) not in new]
    report.doc["torch_rows"] += rows
    if rc != 0:
        log(f"torch worker {tag}: exit {rc}: {tail(se, 300)}")
    return secs


def remaining(args):
    return T0 + args.deadline_s - time.time()


def main_parent(args):
    os.makedirs(args.models_dir, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    report = Report(args)
    models = args.models.split(",")
    for m in models:
        if m not in SPECS:
            sys.exit(f"error: unknown model '{m}'; choose from {','.join(SPECS)}")
    if not os.path.exists(args.kiln):
        sys.exit(f"error: kiln binary '{args.kiln}' not found; build it (cmake --build build --target kiln_cli) or pass --kiln")
    max_batch = max(args.batches_list + [args.max_batch])
    opt_batch = args.opt_batch or max_batch
    log(f"kiln vs torch: models {models}, batches {args.batches_list}, precision {args.precision}, "
        f"budget {args.deadline_s:.0f} s, results in {args.out}")

    # 1. export + inputs (torch on CPU), in-process.
    t = time.time()
    import torch  # noqa: E402 - after argument checks
    report.doc["torch"] = torch.__version__
    usable = []
    for name in models:
        m = report.model(name)
        if args.reexport:
            p = os.path.join(args.models_dir, name + ".onnx")
            if os.path.exists(p):
                os.remove(p)
        try:
            t1 = time.time()
            m.update(export_model(name, args.models_dir, args.batches_list))
            report.clear(name, "export")
            log(f"{name}: onnx + inputs ready in {time.time() - t1:.1f} s" + (" (exported)" if "export_s" in m else " (onnx reused)"))
            usable.append(name)
        except Exception as e:  # noqa: BLE001
            report.error(name, "export", tail(repr(e)))
            log(f"{name}: export failed: {tail(repr(e), 300)}")
    report.phase("export", time.time() - t)
    report.write()

    # 2-3. kiln build + bench.
    t = time.time()
    for name in [] if args.skip_kiln else usable:
        m = report.model(name)
        engine = os.path.join(args.work, f"{name}.{args.precision}.kiln")
        # The first build starts from an empty timing cache and fills it; a second build reads it (rebuild_s).
        cache = os.path.join(args.work, f"{name}.{args.precision}.timing.json")
        if os.path.exists(cache):
            os.remove(cache)
        cmd = [args.kiln, "build", m["path"], "-o", engine, "--backend", "cuda", "--json", "-q", "--timing-cache", cache]
        cmd += profile_args(name, max_batch, opt_batch) + PRECISION_FLAGS[args.precision]
        if args.precision in ("fp16", "bf16") and not args.model_io:
            cmd.append("--reduced-precision-io")  # float I/O in the compute dtype, as torch's f16 model has
        rc, out, err, secs = run_cmd(cmd, min(args.build_timeout, max(remaining(args), 30)))
        m["build_s"] = round(secs, 2)
        if rc != 0:
            report.error(name, "kiln build", tail(err or out))
            log(f"{name}: kiln build failed ({secs:.1f} s): {tail(err or out, 300)}")
            report.write()
            continue
        report.clear(name, "kiln build")
        m["engine_bytes"] = os.path.getsize(engine)
        try:
            m["build_info"] = parse_json_output(out)
        except ValueError:
            pass
        log(f"{name}: kiln build {secs:.1f} s, engine {m['engine_bytes'] / 2**20:.1f} MB")
        again = engine + ".rebuild"
        cmd[cmd.index(engine)] = again
        rc, _, err, secs = run_cmd(cmd, min(args.build_timeout, max(remaining(args), 30)))
        if rc == 0:
            report.clear(name, "kiln rebuild")
            m["rebuild_s"] = round(secs, 2)
            with open(engine, "rb") as f1, open(again, "rb") as f2:
                m["rebuild_identical"] = f1.read() == f2.read()
            os.remove(again)
            log(f"{name}: rebuild with the timing cache {secs:.1f} s, engine "
                + ("byte-identical" if m["rebuild_identical"] else "DIFFERENT"))
        else:
            report.error(name, "kiln rebuild", tail(err))
        bad = convert_inputs(name, args.models_dir, args.batches_list, engine_input_dtypes(args.kiln, engine))
        for b in args.batches_list:
            cmd = [args.kiln, "bench", engine, "--json", "-q", "--iters", str(args.iters), "--warmup", str(args.warmup),
                   "--max-seconds", str(args.kiln_max_s)]
            for n, dims in SPECS[name].items():
                if n in bad:  # a dtype numpy cannot hold (bf16): kiln's own random data at the same shape
                    cmd += ["--shapes", f"{n}:{b}x" + "x".join(str(x) for x in dims)]
                else:
                    cmd += ["--input", f"{n}={os.path.join(args.models_dir, f'{name}.b{b}.{n}.npy')}"]
            rc, out, err, secs = run_cmd(cmd, args.kiln_max_s * 2 + 120)
            if rc != 0:
                m["kiln"][str(b)] = {"error": tail(err or out)}
                log(f"{name} b{b}: kiln bench failed: {tail(err or out, 300)}")
            else:
                try:
                    m["kiln"][str(b)] = parse_json_output(out)
                    log(f"{name} b{b}: kiln {m['kiln'][str(b)]['latency_ms']['median']:.3f} ms ({secs:.1f} s)")
                except (ValueError, KeyError) as e:
                    m["kiln"][str(b)] = {"error": f"unreadable kiln bench output ({e}): {tail(out)}"}
            report.write()
    if not args.skip_kiln:
        report.phase("kiln", time.time() - t)

    # 4. torch eager, all models in one worker (imports once); cheap, so it runs even past the budget.
    if not (args.skip_torch or args.skip_eager) and usable:
        t = time.time()
        log("torch eager ...")
        run_worker(args, report, usable, ["eager"], max(remaining(args), 60), "eager")
        report.phase("torch_eager", time.time() - t)
        report.write()

    # 5. torch.compile modes, one worker per model (inductor's compile workers die with it on a timeout).
    if not (args.skip_torch or args.skip_compile):
        t = time.time()
        for name in usable:
            left = remaining(args)
            if left < 20:
                for mode in TORCH_MODES[1:]:
                    for b in args.batches_list:
                        report.doc["torch_rows"].append({"model": name, "mode": mode, "batch": b,
                                                         "error": "skipped: --deadline-s budget used up"})
                continue
            log(f"{name}: torch.compile + reduce-overhead ({left:.0f} s of budget left) ...")
            secs = run_worker(args, report, [name], list(TORCH_MODES[1:]), left, f"compile-{name}", T0 + args.deadline_s)
            log(f"{name}: torch.compile modes took {secs:.1f} s")
            report.write()
        report.phase("torch_compile", time.time() - t)
    return finish(report)


def finish(report):
    base = report.write()
    print(open(base + ".md").read())
    log(f"wrote {base}.json and {base}.md")
    return 0


def parse_args(argv):
    default_kiln = os.path.join(ROOT, "build", "bin", "kiln")
    if not os.path.exists(default_kiln) and os.path.exists(os.path.join(ROOT, "build", "tools", "kiln", "kiln")):
        default_kiln = os.path.join(ROOT, "build", "tools", "kiln", "kiln")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(SPECS), help="comma-separated subset of " + ",".join(SPECS))
    ap.add_argument("--batches", default="1,32", help="batch sizes to time (default 1,32)")
    ap.add_argument("--iters", type=int, default=200, help="timed iterations per config (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="warm-up iterations per config (default 20)")
    ap.add_argument("--precision", default="fp16", choices=sorted(PRECISION_FLAGS),
                    help="kiln build precision flag and torch dtype (default fp16)")
    ap.add_argument("--model-io", action="store_true",
                    help="keep the model's f32 inputs/outputs in fp16/bf16 engines (default: --reduced-precision-io, "
                         "float I/O in the compute dtype like the torch model it is compared with)")
    ap.add_argument("--skip-compile", action="store_true", help="torch eager only (torch.compile costs minutes)")
    ap.add_argument("--skip-eager", action="store_true", help="no torch eager timing")
    ap.add_argument("--skip-torch", action="store_true", help="no torch timing at all (kiln only)")
    ap.add_argument("--skip-kiln", action="store_true", help="no kiln build/bench (torch only; use with --merge)")
    ap.add_argument("--merge", action="store_true",
                    help="add to today's perf-DATE.json in --out instead of starting it afresh (per config, newer wins)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="where perf-DATE.json/.md go")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "bench", "models"), help="exported ONNX + inputs")
    ap.add_argument("--reexport", action="store_true", help="export again even when MODELS_DIR/NAME.onnx exists")
    ap.add_argument("--kiln", default=default_kiln, help="kiln binary (default build/bin/kiln)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kiln-bench"), help="engines, worker files")
    ap.add_argument("--max-batch", type=int, default=32, help="profile max batch (at least the largest --batches)")
    ap.add_argument("--opt-batch", type=int, default=0, help="profile opt batch (default: the max batch)")
    ap.add_argument("--deadline-s", type=float, default=540,
                    help="overall budget; torch.compile configs that would start after it are skipped (default 540)")
    ap.add_argument("--kiln-max-s", type=float, default=10,
                    help="kiln bench --max-seconds per config, so a slow engine cannot eat the budget (default 10)")
    ap.add_argument("--build-timeout", type=float, default=240, help="seconds per kiln build (default 240)")
    # Internal: the torch worker process.
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--modes", default="eager", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--deadline-at", type=float, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        args.batches_list = [int(x) for x in args.batches.split(",") if x]
    except ValueError:
        ap.error(f"--batches '{args.batches}': expected integers like 1,32")
    if not args.batches_list or min(args.batches_list) < 1:
        ap.error("--batches needs positive batch sizes")
    if args.iters < 1 or args.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    if args.iters < 200 and not args.torch_worker:
        print(f"note: --iters {args.iters} is below the 200 the published numbers use", file=sys.stderr)
    args.argv = argv
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.torch_worker:
        torch_worker(args)
        return 0
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
