#!/usr/bin/env python3
"""GPU-machine checks of the kiln Python package (run by tests/gpu/python_gpu.sh):

  from_torch   kiln.from_torch on torchvision ResNet-50 and transformers BERT-base (random weights) against
               torch: f32 max rel err <= 1e-3, f16 cosine >= 0.999.
  ort          code written for onnxruntime.InferenceSession, run once with onnxruntime and once with
               kiln.InferenceSession (only the module differs) on the four benchmark models exported by
               bench/export_models.py: max rel err <= 1e-3 (kiln f32, TF32 off).

Writes OUT/python_gpu_checks.json and .md; exits 1 when a check fails.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import kiln

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def rel_err(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-12))


def min_cosine(got, ref):
    g = np.asarray(got, np.float64).reshape(got.shape[0], -1)
    r = np.asarray(ref, np.float64).reshape(ref.shape[0], -1)
    return float(np.min(np.sum(g * r, 1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1) + 1e-30)))


class FirstOutput(torch.nn.Module):
    """transformers models return dataclasses; from_torch takes modules that return tensors."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids, mask):
        return self.m(ids, mask)[0]


def from_torch_checks():
    import torchvision
    from transformers import BertConfig, BertModel

    rows = []
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None).eval().cuda()
    x = torch.randn(2, 3, 224, 224, device="cuda")
    bert = FirstOutput(BertModel(BertConfig())).eval().cuda()
    ids = torch.randint(0, 30522, (2, 128), device="cuda")
    mask = torch.ones(2, 128, dtype=torch.int64, device="cuda")
    cases = [("resnet50", resnet, (x,), {0: {0: "batch"}}),
             ("bert_base", bert, (ids, mask), {0: {0: "batch", 1: "seq"}, 1: {0: "batch", 1: "seq"}})]
    for name, module, example, dyn in cases:
        with torch.no_grad():
            ref = module(*example).float().cpu().numpy()
        for fp16 in (False, True):
            t0 = time.time()
            engine = kiln.from_torch(module, example, dynamic_shapes=dyn, fp16=fp16)
            build_s = time.time() - t0
            out = engine(*example)
            assert out.is_cuda, "from_torch returned a host tensor for CUDA inputs"
            got = out.float().cpu().numpy()
            row = {"check": "from_torch", "model": name, "precision": "f16" if fp16 else "f32",
                   "export_build_s": round(build_s, 1), "max_rel_err": rel_err(got, ref), "min_cosine": min_cosine(got, ref),
                   "backend": engine.engine.backend}
            row["ok"] = row["min_cosine"] >= 0.999 if fp16 else row["max_rel_err"] <= 1e-3
            rows.append(row)
            print(json.dumps(row), flush=True)
            del engine
    return rows


def ort_checks(models_dir):
    import onnxruntime

    rows = []
    feeds_of = {"resnet50": ["image"], "vit_b_16": ["image"], "bert_base": ["input_ids", "attention_mask"],
                "gpt2": ["input_ids"]}
    for name, inputs in feeds_of.items():
        path = os.path.join(models_dir, name + ".onnx")
        if not os.path.exists(path):
            rows.append({"check": "ort", "model": name, "ok": False, "note": f"{path} missing"})
            continue
        feed = {n: np.load(os.path.join(models_dir, f"{name}.b1.{n}.npy")) for n in inputs}
        outs, meta = {}, {}
        for module in (onnxruntime, kiln):  # the same code; only the module differs
            t0 = time.time()
            kwargs = {"tactic_timing": False} if module is kiln else {}
            session = module.InferenceSession(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], **kwargs)
            names = [i.name for i in session.get_inputs()]
            types = [i.type for i in session.get_inputs()]
            outs[module.__name__] = session.run(None, feed)[0]
            meta[module.__name__] = {"inputs": names, "types": types, "providers": session.get_providers()[:1],
                                     "seconds": round(time.time() - t0, 1)}
        row = {"check": "ort", "model": name, "max_rel_err": rel_err(outs["kiln"], outs["onnxruntime"]),
               "same_input_names_and_types": meta["kiln"]["inputs"] == meta["onnxruntime"]["inputs"]
               and meta["kiln"]["types"] == meta["onnxruntime"]["types"],
               "ort_provider": meta["onnxruntime"]["providers"][0], "kiln_provider": meta["kiln"]["providers"][0],
               "ort_s": meta["onnxruntime"]["seconds"], "kiln_s": meta["kiln"]["seconds"]}
        row["ok"] = row["max_rel_err"] <= 1e-3 and row["same_input_names_and_types"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/kiln-out"))
    ap.add_argument("--models-dir", default="/tmp/m")
    ap.add_argument("--checks", default="from_torch,ort")
    args = ap.parse_args()
    checks = args.checks.split(",")
    rows = []
    if "from_torch" in checks:
        rows += from_torch_checks()
    if "ort" in checks:
        rows += ort_checks(args.models_dir)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "python_gpu_checks.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "python_gpu_checks.md"), "w") as f:
        f.write(f"# kiln Python package on {torch.cuda.get_device_name()}\n\n| check | model | precision | max rel err | "
                "min cosine | ok | note |\n|---|---|---|---|---|---|---|\n")
        for r in rows:
            note = r.get("note", "") or f"ort {r.get('ort_provider', '')}, kiln {r.get('kiln_provider', r.get('backend', ''))}"
            f.write(f"| {r['check']} | {r['model']} | {r.get('precision', 'f32')} | {r.get('max_rel_err', '')} | "
                    f"{r.get('min_cosine', '')} | {r['ok']} | {note} |\n")
    failed = [r for r in rows if not r["ok"]]
    print(f"python gpu checks: {len(rows) - len(failed)}/{len(rows)} ok" + (f"; FAILED: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
