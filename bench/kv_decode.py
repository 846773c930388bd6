#!/usr/bin/env python3
"""Greedy decoding with a KV cache updated in place: kiln against torch, on GPT-2 and a small Llama-style decoder
(rotary embeddings, grouped-query attention) from transformers, random weights, fixed seed.

Each model's decode step is exported with its cache preallocated at --max-len rows and written at a position input
(a scatter; docs/kv_cache.md), so `kiln.build` pairs present.N.* with past_key_values.N.* and each step writes only
the new rows into the caller's cache tensors. Checks and timings, all in one run on the GPU machine:
  - the step (torch eager, f32) decodes the same tokens as transformers' own `generate` (greedy): the exported
    step is the model;
  - kiln f32 and f16 decode --tokens tokens from a random prompt: the same tokens as torch at that precision;
  - per-token latency at batch 1 and 8 (median of CUDA-event-timed steps): kiln (ctx.infer, torch tensors, cache in
    place), torch eager and torch.compile(mode="reduce-overhead") of the same step with a static cache written in
    place (index_copy_ into tensors marked static).
    tests/gpu/python_gpu.sh build        # the kiln module for the venv's Python, in build-pygpu/
    PYTHONPATH=build-pygpu/python /opt/torch/.venv/bin/python bench/kv_decode.py --out bench/results \
        [--models gpt2,llama] [--tokens 64]
Writes kv-decode.json and kv-decode.md to --out.
"""
import argparse
import datetime
import json
import math
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_latency as bl  # noqa: E402  (CUDA-event timing, stats, GPU name, commit)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


# ---------------------------------------------------------------------------------------------------------------
# The models and their decode step

def make_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config())


def make_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=2048)
    return LlamaForCausalLM(cfg)


def cache_geometry(model):
    """(layers, kv heads, head dim) of the model's cache."""
    c = model.config
    if c.model_type == "gpt2":
        return c.n_layer, c.n_head, c.n_embd // c.n_head
    return c.num_hidden_layers, c.num_key_value_heads, c.hidden_size // c.num_attention_heads


def write_rows(cache, rows, position, in_place):
    """Row `position` of the cache [batch, heads, max_len, head_dim] := rows [batch, heads, 1, head_dim]. The exported
    step scatters (ONNX ScatterElements: kiln updates the input buffer in place); torch's timed step index_copy_s
    into its static tensors."""
    if in_place:
        return cache.index_copy_(2, position, rows)
    idx = position.view(1, 1, 1, 1).expand(rows.shape[0], rows.shape[1], 1, rows.shape[3])
    return cache.scatter(2, idx, rows)


def attend(q, k, v, position):
    """Attention of one query row over the cache rows 0..position."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    later = torch.arange(k.shape[2], device=q.device).view(1, 1, 1, -1) > position.view(1, 1, 1, 1)
    scores = scores.masked_fill(later, torch.finfo(scores.dtype).min)
    return torch.matmul(scores.softmax(-1), v)


def gpt2_step(m, ids, position, caches, in_place):
    tr, c = m.transformer, m.config
    b, heads, width = ids.shape[0], c.n_head, c.n_embd
    h = tr.wte(ids) + tr.wpe(position).unsqueeze(0)
    new = []
    for i, blk in enumerate(tr.h):
        q, k, v = blk.attn.c_attn(blk.ln_1(h)).split(width, dim=2)
        q, k, v = (t.view(b, 1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        kc = write_rows(caches[2 * i], k, position, in_place)
        vc = write_rows(caches[2 * i + 1], v, position, in_place)
        o = attend(q, kc, vc, position).transpose(1, 2).reshape(b, 1, width)
        h = h + blk.attn.c_proj(o)
        h = h + blk.mlp(blk.ln_2(h))
        new += [kc, vc]
    return m.lm_head(tr.ln_f(h))[:, -1], new


def llama_step(m, ids, position, caches, in_place):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv
    mm, c = m.model, m.config
    b, heads, kv_heads = ids.shape[0], c.num_attention_heads, c.num_key_value_heads
    dim = c.hidden_size // heads
    h = mm.embed_tokens(ids)
    rotary = getattr(mm, "rotary_emb", None) or mm.layers[0].self_attn.rotary_emb  # its place moved across versions
    cos, sin = rotary(h, position.view(1, 1).expand(b, 1))
    new = []
    for i, layer in enumerate(mm.layers):
        at = layer.self_attn
        x = layer.input_layernorm(h)
        q = at.q_proj(x).view(b, 1, heads, dim).transpose(1, 2)
        k = at.k_proj(x).view(b, 1, kv_heads, dim).transpose(1, 2)
        v = at.v_proj(x).view(b, 1, kv_heads, dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        kc = write_rows(caches[2 * i], k, position, in_place)
        vc = write_rows(caches[2 * i + 1], v, position, in_place)
        o = attend(q, repeat_kv(kc, heads // kv_heads), repeat_kv(vc, heads // kv_heads), position)
        h = h + at.o_proj(o.transpose(1, 2).reshape(b, 1, heads * dim))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
        new += [kc, vc]  # the present.N.* outputs: without them the export has no cache outputs to pair
    return m.lm_head(mm.norm(h))[:, -1], new


MODELS = {"gpt2": (make_gpt2, gpt2_step), "llama": (make_llama, llama_step)}


class Step(torch.nn.Module):
    """forward(input_ids [batch, 1], position [1], *past) -> (logits [batch, vocab], *present)."""

    def __init__(self, model, step, in_place=False):
        super().__init__()
        self.model, self.step, self.in_place = model, step, in_place

    def forward(self, ids, position, *caches):
        logits, new = self.step(self.model, ids, position, list(caches), self.in_place)
        return (logits, *new)


def cache_names(layers):
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return past, [n.replace("past_key_values", "present") for n in past]


def new_caches(model, batch, max_len, dtype):
    layers, heads, dim = cache_geometry(model)
    return [torch.zeros(batch, heads, max_len, dim, dtype=dtype, device="cuda") for _ in range(2 * layers)]


def greedy(step_fn, prompt, new_tokens):
    """Decodes token by token (the prompt too); step_fn(ids, position) -> logits. Returns [batch, new_tokens]."""
    out, nxt = [], None
    for pos in range(prompt.shape[1] + new_tokens - 1):
        ids = prompt[:, pos:pos + 1] if pos < prompt.shape[1] else nxt
        logits = step_fn(ids, torch.tensor([pos], device="cuda"))
        if pos >= prompt.shape[1] - 1:
            nxt = logits.argmax(-1, keepdim=True)
            out.append(nxt)
    return torch.cat(out, 1)


# ---------------------------------------------------------------------------------------------------------------
# kiln

def export(model, step, path, max_len):
    layers, _, _ = cache_geometry(model)
    past, present = cache_names(layers)
    ids = torch.zeros(2, 1, dtype=torch.int64, device="cuda")
    args = (ids, torch.tensor([3], device="cuda"), *new_caches(model, 2, max_len, torch.float32))
    batch = {0: "batch"}
    dyn = {"input_ids": batch, "logits": batch, **{n: batch for n in past + present}}
    kw = dict(input_names=["input_ids", "position", *past], output_names=["logits", *present], dynamic_axes=dyn,
              opset_version=17)
    try:
        torch.onnx.export(Step(model, step), args, path, dynamo=False, **kw)
        return "torchscript"
    except Exception as e:  # noqa: BLE001  (the other exporter is the fallback; its error is reported)
        bl.log(f"torchscript export failed ({str(e)[:200]}); trying dynamo")
        torch.onnx.export(Step(model, step), args, path, dynamo=True, **kw)
        return "dynamo"


def kiln_build(kiln, path, model, fp16, max_len, max_batch):
    layers, heads, dim = cache_geometry(model)
    past, _ = cache_names(layers)
    shapes = {"input_ids": [(1, 1), (1, 1), (max_batch, 1)]}
    for n in past:
        shapes[n] = [(1, heads, max_len, dim), (1, heads, max_len, dim), (max_batch, heads, max_len, dim)]
    lines = []
    t0 = time.time()
    engine = kiln.build(path, backend="cuda", fp16=fp16, reduced_precision_io=fp16, shapes=shapes,
                        progress=lines.append)
    in_place = sum("(in place" in line for line in lines if line.startswith("alias:"))
    return engine, {"build_s": round(time.time() - t0, 1), "aliases": len(engine.info["aliases"]),
                    "in_place": in_place, "alias_lines": [l for l in lines if l.startswith("alias:")][:4]}


def kiln_stepper(engine, model, batch, max_len, dtype):
    ctx = engine.create_context()
    layers, _, _ = cache_geometry(model)
    past, _ = cache_names(layers)
    caches = dict(zip(past, new_caches(model, batch, max_len, dtype)))

    def step(ids, position):
        out = ctx.infer({"input_ids": ids, "position": position, **caches})  # caches updated in place
        return out["logits"]
    return step, ctx


def torch_stepper(model, step, batch, max_len, dtype, compiled):
    caches = new_caches(model, batch, max_len, dtype)
    for c in caches:
        torch._dynamo.mark_static_address(c)
    mod = Step(model, step, in_place=True)
    fn = torch.compile(mod, mode="reduce-overhead", fullgraph=False) if compiled else mod

    def run(ids, position):
        return fn(ids, position, *caches)[0]
    return run


def time_steps(step_fn, batch, start, iters, mark_step=False):
    ids = torch.randint(0, 1000, (batch, 1), device="cuda")
    pos = torch.tensor([start], device="cuda")
    times, _ = bl.cuda_time(lambda: step_fn(ids, pos), iters, 10, mark_step=mark_step)
    return bl.stats(times)


# ---------------------------------------------------------------------------------------------------------------

def run_model(kiln, name, args, work):
    make, step = MODELS[name]
    torch.manual_seed(0)
    model = make().cuda().eval()
    row = {"model": name}
    layers, heads, dim = cache_geometry(model)
    row["cache"] = f"{layers} layers x 2 x [batch, {heads}, {args.max_len}, {dim}]"
    prompt = torch.randint(0, model.config.vocab_size, (1, args.prompt), device="cuda")
    with torch.no_grad():
        # The step against transformers' own greedy generate (f32, batch 1).
        caches = new_caches(model, 1, args.max_len, torch.float32)
        mine = greedy(lambda i, p: Step(model, step, True)(i, p, *caches)[0], prompt, args.tokens)
        model.generation_config.eos_token_id = None  # random weights: never stop early
        ref = model.generate(prompt, max_new_tokens=args.tokens, do_sample=False, pad_token_id=0)[:, args.prompt:]
        n = min(ref.shape[1], mine.shape[1])
        row["step_matches_generate"] = int((mine[:, :n] == ref[:, :n]).sum()), int(args.tokens)
        path = os.path.join(work, f"{name}.onnx")
        t0 = time.time()
        row["exporter"] = export(model, step, path, args.max_len)
        row["export_s"] = round(time.time() - t0, 1)
        for prec, dtype in (("f32", torch.float32), ("f16", torch.float16)):
            m = model if dtype == torch.float32 else model.half()
            engine, info = kiln_build(kiln, path, model, prec == "f16", args.max_len, max(args.batches))
            row[prec] = info
            kstep, ctx = kiln_stepper(engine, model, 1, args.max_len, dtype)
            got = greedy(kstep, prompt, args.tokens)
            caches = new_caches(model, 1, args.max_len, dtype)
            want = greedy(lambda i, p: Step(m, step, True)(i, p, *caches)[0], prompt, args.tokens)
            info["tokens_match_torch"] = int((got == want).sum()), int(want.numel())
            info["first_mismatch"] = next((i for i in range(want.shape[1]) if got[0, i] != want[0, i]), None)
            info["run_info"] = {k: v for k, v in ctx.last_run_info().items() if k in ("cuda_graph", "arena_bytes",
                                                                                     "not_captured")}
            lat = {}
            for b in args.batches:
                kstep, _ = kiln_stepper(engine, model, b, args.max_len, dtype)
                lat[f"kiln b{b}"] = time_steps(kstep, b, args.max_len // 2, args.iters)
                lat[f"eager b{b}"] = time_steps(torch_stepper(m, step, b, args.max_len, dtype, False), b,
                                                args.max_len // 2, args.iters)
                try:
                    lat[f"reduce-overhead b{b}"] = time_steps(torch_stepper(m, step, b, args.max_len, dtype, True),
                                                              b, args.max_len // 2, args.iters, mark_step=True)
                except Exception as e:  # noqa: BLE001  (reported in the table, the rest still runs)
                    lat[f"reduce-overhead b{b}"] = {"error": str(e)[:300]}
            info["latency_ms"] = lat
            bl.log(f"{name} {prec}: tokens {info['tokens_match_torch']}, in place {info['in_place']}/"
                   f"{info['aliases']}, " + ", ".join(f"{k} {v.get('median', float('nan')):.3f}" for k, v in lat.items()))
            del engine
        model.float()
    return row


def markdown(doc):
    lines = [f"# KV-cache decoding — {doc['date']}, {doc['gpu']}, commit {doc['commit']}, torch {doc['torch']}", "",
             f"Command: `{doc['command']}`", "",
             "Greedy decoding of random-weight transformers models, the cache preallocated at "
             f"{doc['max_len']} rows and updated in place (docs/kv_cache.md). Latency: median ms per decode step "
             "(one token for each row of the batch) at position max_len/2, CUDA events. torch runs the same step "
             "with its cache written in place by index_copy_ (static tensors), eager and "
             "torch.compile(mode=\"reduce-overhead\").", ""]
    for r in doc["models"]:
        lines += [f"## {r['model']}: {r['cache']}", "",
                  f"- the exported step vs transformers' generate (f32): {r['step_matches_generate'][0]} of "
                  f"{r['step_matches_generate'][1]} tokens equal; export via {r['exporter']} in {r['export_s']} s", ""]
        lines += ["| precision | tokens = torch | in place / aliases | build s | batch | kiln ms | eager ms | "
                  "reduce-overhead ms | vs eager | vs RO |", "|---|---|---|---|---|---|---|---|---|---|"]
        for prec in ("f32", "f16"):
            p = r.get(prec)
            if not p:
                continue
            for b in doc["batches"]:
                lat = p["latency_ms"]
                med = lambda k: lat.get(f"{k} b{b}", {}).get("median")
                k, e, ro = med("kiln"), med("eager"), med("reduce-overhead")
                ratio = lambda t: f"{t / k:.2f}" if t and k else "-"
                fmt = lambda v: f"{v:.3f}" if v else "-"
                lines.append(f"| {prec} | {p['tokens_match_torch'][0]}/{p['tokens_match_torch'][1]} | "
                             f"{p['in_place']}/{p['aliases']} | {p['build_s']} | {b} | {fmt(k)} | {fmt(e)} | "
                             f"{fmt(ro)} | {ratio(e)} | {ratio(ro)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    # The cache holds --max-len rows: the prompt and every generated token but the last are written into it.
    if args.prompt + args.tokens - 1 >= args.max_len:
        ap.error(f"--prompt {args.prompt} + --tokens {args.tokens} need --max-len > {args.prompt + args.tokens - 1}")
    if "gpt2" in args.models.split(",") and args.max_len > 1024:
        ap.error("--max-len is at most 1024 for gpt2 (its position table)")
    args.batches = [int(b) for b in args.batches.split(",")]
    import kiln
    doc = {"date": datetime.date.today().isoformat(), "gpu": bl.gpu_name(), "commit": bl.git_commit(),
           "torch": torch.__version__, "command": "python3 bench/kv_decode.py " + " ".join(sys.argv[1:]),
           "max_len": args.max_len, "batches": args.batches, "models": []}
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(","):
            try:
                doc["models"].append(run_model(kiln, name, args, work))
            except Exception as e:  # noqa: BLE001  (one model's failure is recorded; the others still run)
                import traceback
                traceback.print_exc()
                doc.setdefault("errors", []).append({"model": name, "error": str(e)[:500]})
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "kv-decode.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(args.out, "kv-decode.md"), "w") as f:
        f.write(markdown(doc))
    print(markdown(doc))
    return 1 if doc.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
