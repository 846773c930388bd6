#!/usr/bin/env python3
"""Builds kiln engines for the exported models and compares their outputs with torch's (same inputs).

    python3 bench/compare_torch.py --models-dir bench/models --kiln build/bin/kiln --out bench/results
Writes OUT/accuracy-DATE.json and .md: per model, precision and batch: max relative error, cosine, argmax agreement.
"""
import argparse
import datetime
import json
import os
import subprocess
import tempfile
import time

import numpy as np

PROFILES = {
    "resnet50": ["image:1x3x224x224,8x3x224x224,32x3x224x224"],
    "vit_b_16": ["image:1x3x224x224,8x3x224x224,32x3x224x224"],
    "bert_base": ["input_ids:1x128,8x128,32x128", "attention_mask:1x128,8x128,32x128"],
    "gpt2": ["input_ids:1x512,8x512,32x512"],
}
INPUTS = {"resnet50": ["image"], "vit_b_16": ["image"], "bert_base": ["input_ids", "attention_mask"], "gpt2": ["input_ids"]}
CLASSIFIERS = {"resnet50", "vit_b_16"}


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def write(args, rows):
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    # KILN_COMMIT first: the GPU machine's copy of .git can be stale (bench/gpu_session.sh passes the real one).
    commit = os.environ.get("KILN_COMMIT", "")
    if not commit and os.path.isdir(".git"):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    doc = {"date": stamp, "gpu": gpu, "commit": commit or "?", "rows": rows}
    with open(os.path.join(args.out, f"accuracy-{stamp}.json"), "w") as f:
        json.dump(doc, f, indent=2)
    with open(os.path.join(args.out, f"accuracy-{stamp}.md"), "w") as f:
        f.write(f"# kiln vs torch accuracy — {stamp}, {gpu}, commit {doc['commit']}\n\n")
        f.write("| model | precision | batch | max rel err | min cosine | argmax agree | kiln ms (incl. host copies) | note |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['model']} | {r['precision']} | {r.get('batch', '')} | {r.get('max_rel_err', '')} | "
                    f"{r.get('min_cosine', '')} | {r.get('argmax_agree', '')} | {r.get('kiln_median_ms_incl_host_copies', '')} | "
                    f"{r.get('error', '')[:120]} |\n")
    return os.path.join(args.out, f"accuracy-{stamp}.md")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-dir", default="bench/models")
    ap.add_argument("--kiln", default="build/bin/kiln")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--models", default=",".join(PROFILES))
    ap.add_argument("--precisions", default="f32")
    ap.add_argument("--batches", default="1,7,32")
    args = ap.parse_args()
    rows = []
    tmp = tempfile.mkdtemp()
    for name in args.models.split(","):
        onnx_path = os.path.join(args.models_dir, name + ".onnx")
        for prec in args.precisions.split(","):
            engine = os.path.join(tmp, f"{name}.{prec}.kiln")
            cmd = [args.kiln, "build", onnx_path, "-o", engine, "--backend", "cuda", "-q"]
            for s in PROFILES[name]:
                cmd += ["--shapes", s]
            if prec != "f32":
                cmd.append({"f16": "--fp16", "bf16": "--bf16", "tf32": "--tf32"}[prec])
            rc, log, build_s = run(cmd)
            if rc != 0:
                rows.append({"model": name, "precision": prec, "error": log.strip()[-500:]})
                print(f"{name} {prec}: build failed: {log.strip()[-300:]}", flush=True)
                continue
            for b in [int(x) for x in args.batches.split(",")]:
                outdir = os.path.join(tmp, f"{name}.{prec}.b{b}")
                cmd = [args.kiln, "run", engine, "--output-dir", outdir, "-q", "--iterations", "5", "--json"]
                for n in INPUTS[name]:
                    cmd += ["--input", f"{n}={os.path.join(args.models_dir, f'{name}.b{b}.{n}.npy')}"]
                rc, log, _ = run(cmd)
                if rc != 0:
                    rows.append({"model": name, "precision": prec, "batch": b, "error": log.strip()[-500:]})
                    print(f"{name} {prec} b{b}: run failed: {log.strip()[-300:]}", flush=True)
                    continue
                latency = json.loads(log[log.index("{"):])["latency_ms"]["median"]
                got = np.load(os.path.join(outdir, "output.npy")).astype(np.float64)
                ref = np.load(os.path.join(args.models_dir, f"{name}.b{b}.ref.npy")).astype(np.float64)
                rel = float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-12))
                g2, r2 = got.reshape(got.shape[0], -1), ref.reshape(ref.shape[0], -1)
                cos = float(np.min(np.sum(g2 * r2, 1) / (np.linalg.norm(g2, axis=1) * np.linalg.norm(r2, axis=1) + 1e-30)))
                row = {"model": name, "precision": prec, "batch": b, "max_rel_err": rel, "min_cosine": cos,
                       "build_s": round(build_s, 2), "kiln_median_ms_incl_host_copies": latency}
                if name in CLASSIFIERS:
                    row["argmax_agree"] = float(np.mean(np.argmax(g2, 1) == np.argmax(r2, 1)))
                rows.append(row)
                print(json.dumps(row), flush=True)
                write(args, rows)  # a run cut short still leaves its rows
    print("wrote", write(args, rows))


if __name__ == "__main__":
    main()
