#!/usr/bin/env python3
"""Exports the four reference models with torch's default ONNX exporter, random weights, fixed seed, dynamic batch
(and sequence) axes, and saves inputs plus torch f32 reference outputs (TF32 off) at several batch sizes.

Run on the GPU machine (torch, torchvision, transformers there):
    python3 bench/export_models.py --out bench/models [--models resnet50,vit_b_16,bert_base,gpt2]
Writes OUT/NAME.onnx (+ external data when large), OUT/NAME.bB.input*.npy and OUT/NAME.bB.ref*.npy.
"""
import argparse
import os
import time

import numpy as np
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

BATCHES = (1, 7, 32)


def resnet50():
    import torchvision
    m = torchvision.models.resnet50(weights=None)
    return m, ["image"], lambda b: (torch.randn(b, 3, 224, 224),), {"image": {0: "batch"}}


def vit_b_16():
    import torchvision
    m = torchvision.models.vit_b_16(weights=None)
    # torchvision zero-initialises the classification head, which would make every logit exactly 0 on both sides
    # and hide any error before it: give it random weights like the rest of the model.
    torch.nn.init.normal_(m.heads.head.weight, std=0.02)
    torch.nn.init.normal_(m.heads.head.bias, std=0.02)
    return m, ["image"], lambda b: (torch.randn(b, 3, 224, 224),), {"image": {0: "batch"}}


def bert_base():
    from transformers import BertConfig, BertModel
    m = BertModel(BertConfig())
    seq = 128

    def inputs(b):
        ids = torch.randint(0, 30522, (b, seq))
        mask = torch.ones(b, seq, dtype=torch.int64)
        return ids, mask

    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    return m, ["input_ids", "attention_mask"], inputs, dyn


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    m = GPT2LMHeadModel(GPT2Config(use_cache=False))
    m.config.use_cache = False
    seq = 512
    return m, ["input_ids"], lambda b: (torch.randint(0, 50257, (b, seq)),), {"input_ids": {0: "batch", 1: "seq"}}


MODELS = {"resnet50": resnet50, "vit_b_16": vit_b_16, "bert_base": bert_base, "gpt2": gpt2}


def first(out):
    """transformers models return dataclasses; export the first tensor (last_hidden_state / logits)."""
    return out if isinstance(out, torch.Tensor) else out[0]


# Fixed-arity wrappers: the exporter maps dynamic axes onto forward()'s named parameters.
class OneInput(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return first(self.m(x))


class TwoInputs(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x, mask):
        return first(self.m(x, mask))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/models")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        torch.manual_seed(0)
        np.random.seed(0)
        model, input_names, make_inputs, dynamic_axes = MODELS[name]()
        model = (OneInput if len(input_names) == 1 else TwoInputs)(model.eval())
        path = os.path.join(args.out, name + ".onnx")
        t0 = time.time()
        example = make_inputs(2)
        with torch.no_grad():
            torch.onnx.export(model, example, path, input_names=input_names, output_names=["output"],
                              dynamic_axes={**dynamic_axes, "output": {0: "batch"}})
        print(f"{name}: exported {path} in {time.time() - t0:.1f} s", flush=True)
        gpu = model.cuda()
        for b in BATCHES:
            torch.manual_seed(100 + b)
            ins = make_inputs(b)
            with torch.no_grad():
                ref = gpu(*[x.cuda() for x in ins]).float().cpu().numpy()
            for i, (n, x) in enumerate(zip(input_names, ins)):
                np.save(os.path.join(args.out, f"{name}.b{b}.{n}.npy"), x.numpy())
            np.save(os.path.join(args.out, f"{name}.b{b}.ref.npy"), ref)
        print(f"{name}: references at batch {BATCHES}", flush=True)
        del gpu
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
