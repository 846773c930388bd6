#!/usr/bin/env python3
"""Summarizes bench/toolkit_gpu.sh's files (compare_MODEL_PREC.json, sweep_MODEL_f16.json) into one JSON and one
markdown table, and copies the HTML pages beside them.

  toolkit_summary.py DIR --out bench/results --gpu "NVIDIA H200" --commit HASH [--date YYYY-MM-DD] [--note TEXT]
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil


def num(v):
    return float("inf") if v == "inf" else float("nan") if isinstance(v, str) else v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--gpu", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--note", default="", help="a paragraph added under the comparison table")
    a = ap.parse_args()
    compares, sweeps = [], []
    for f in sorted(glob.glob(os.path.join(a.dir, "compare_*.json"))):
        model, prec = re.match(r"compare_(.+)_(f32|f16)\.json", os.path.basename(f)).groups()
        j = json.load(open(f))
        for c in j["cases"]:
            for o in c["outputs"]:
                compares.append({"model": model, "precision": prec, "shape": c["label"], "inputs": c["inputs"],
                                 "output": o["name"], "rule": j["rule"]["text"], "atol": j["rule"]["atol"],
                                 "pass": o["pass"], "max_abs": num(o["max_abs"]), "max_rel": num(o["max_rel"]),
                                 "cosine": num(o["cosine"]), "tolerance_ratio": num(o["tolerance_ratio"]),
                                 "over_tolerance": o["over_tolerance"], "elements": o["elements"]})
    for f in sorted(glob.glob(os.path.join(a.dir, "sweep_*_f16.json"))):
        model = re.match(r"sweep_(.+)_f16\.json", os.path.basename(f)).group(1)
        for r in json.load(open(f)):
            l = r["latency_ms"]
            sweeps.append({"model": model, "point": "profile %s %s" % (r["sweep_point"]["profile"], r["sweep_point"]["point"]),
                           "shapes": r["shapes"], "median_ms": l["median"], "p95_ms": l["p95"], "p99_ms": l["p99"],
                           "cv": l["cv"], "inferences_per_s": r["throughput"]["inferences_per_s"],
                           "samples_per_s": r["throughput"]["samples_per_s"], "cuda_graph": r["execution"]["cuda_graph"]})
    pages = os.path.join(a.out, "toolkit-pages")
    os.makedirs(pages, exist_ok=True)
    for f in glob.glob(os.path.join(a.dir, "*.html")):
        shutil.copy(f, pages)
    meta = {"date": a.date, "gpu": a.gpu, "commit": a.commit,
            "command": "bench/toolkit_gpu.sh (kiln compare --backend cuda [--fp16] --shapes <batch 1,4,8> --json --html; "
                       "kiln build --fp16 + kiln bench --sweep --iters 200 --json --html)"}
    json.dump({**meta, "compare": compares, "sweep": sweeps}, open(os.path.join(a.out, "toolkit.json"), "w"), indent=1)
    md = ["# kiln compare and kiln bench --sweep on the benchmark models", "",
          "%s, %s, commit %s. Command: `%s`; pages in `toolkit-pages/`." % (a.date, a.gpu, a.commit, meta["command"]), "",
          "## kiln compare against the CPU reference (f32), every profile shape", "",
          "| model | engine | shape | pass | max abs | max rel | cosine | error / tolerance | over |",
          "|---|---|---|---|---|---|---|---|---|"]
    for c in compares:
        md.append("| %s | %s | %s | %s | %.3g | %.3g | %.9f | %.3g | %d of %d |" % (
            c["model"], c["precision"], c["shape"], "yes" if c["pass"] else "**no**", c["max_abs"], c["max_rel"],
            c["cosine"], c["tolerance_ratio"], c["over_tolerance"], c["elements"]))
    rules = sorted({(c["precision"], c["rule"]) for c in compares})
    md += ["", "Rules applied: " + "; ".join("%s: `%s`" % r for r in rules) + "."] + (["", a.note] if a.note else []) + ["",
           "## kiln bench --sweep, f16 engines", "",
           "| model | point | shapes | median ms | p95 | p99 | cv | inferences/s | samples/s | CUDA graph |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for s in sweeps:
        shapes = ", ".join("%s %s" % (k, "x".join(map(str, v))) for k, v in s["shapes"].items())
        md.append("| %s | %s | %s | %.4f | %.4f | %.4f | %.2f%% | %.1f | %.1f | %s |" % (
            s["model"], s["point"], shapes, s["median_ms"], s["p95_ms"], s["p99_ms"], 100 * s["cv"],
            s["inferences_per_s"], s["samples_per_s"], "yes" if s["cuda_graph"] else "no"))
    open(os.path.join(a.out, "toolkit.md"), "w").write("\n".join(md) + "\n")
    print("wrote %s/toolkit.{json,md} (%d comparisons, %d sweep rows)" % (a.out, len(compares), len(sweeps)))


if __name__ == "__main__":
    main()
