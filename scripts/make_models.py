#!/usr/bin/env python3
"""Writes the small models that ship in models/ (fixed seed, so reruns give identical files).

tiny_cnn.onnx        image[batch,3,32,32] -> probs[batch,10]: Conv/BN-free ResNet-ish block, pooling, Gemm, Softmax.
tiny_attention.onnx  tokens[batch,seq,32] -> out[batch,seq,32]: one self-attention block with torch-style
                     Shape/Gather/Concat/Reshape chains over the dynamic batch and sequence dims.
Needs numpy and onnx (Debian: python3-numpy python3-onnx).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(1234)
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


def w(name, *shape, scale=0.1):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def tiny_cnn():
    nodes = [
        helper.make_node("Conv", ["image", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2_w", "c2_b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["res"], name="residual"),
        helper.make_node("Relu", ["res"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p1"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    inits = [w("c1_w", 16, 3, 3, 3), w("c1_b", 16), w("c2_w", 16, 16, 3, 3), w("c2_b", 16),
             w("fc_w", 10, 16), w("fc_b", 10)]
    g = helper.make_graph(nodes, "tiny_cnn",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-models")


def tiny_attention():
    d, h = 32, 4
    hd = d // h
    nodes = [
        # torch-style dynamic shape plumbing: b = shape[0], s = shape[1]
        helper.make_node("Shape", ["tokens"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "idx0"], ["b"], name="get_batch", axis=0),
        helper.make_node("Gather", ["shp", "idx1"], ["s"], name="get_seq", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"], name="unsq_b"),
        helper.make_node("Unsqueeze", ["s", "axes0"], ["s1"], name="unsq_s"),
        helper.make_node("Concat", ["b1", "s1", "heads", "head_dim"], ["split_shape"], name="split_shape", axis=0),
        helper.make_node("Concat", ["b1", "s1", "model_dim"], ["merge_shape"], name="merge_shape", axis=0),
        helper.make_node("LayerNormalization", ["tokens", "ln_g", "ln_b"], ["ln"], name="ln1", axis=-1, epsilon=1e-5),
    ]
    for name in ("q", "k", "v"):
        nodes += [
            helper.make_node("MatMul", ["ln", f"w{name}"], [f"{name}_p"], name=f"{name}_proj"),
            helper.make_node("Add", [f"{name}_p", f"b{name}"], [f"{name}_b"], name=f"{name}_bias"),
            helper.make_node("Reshape", [f"{name}_b", "split_shape"], [f"{name}_r"], name=f"{name}_split"),
            helper.make_node("Transpose", [f"{name}_r"], [f"{name}_t"], name=f"{name}_heads",
                             perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3]),
        ]
    nodes += [
        helper.make_node("MatMul", ["q_t", "k_t"], ["scores"], name="qk"),
        helper.make_node("Div", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["attn"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attn", "v_t"], ["ctx"], name="av"),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], name="merge_heads", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["ctx_m"], name="merge"),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["o_p"], name="o_proj"),
        helper.make_node("Add", ["o_p", "bo"], ["o_b"], name="o_bias"),
        helper.make_node("Add", ["o_b", "tokens"], ["res"], name="residual"),
        helper.make_node("MatMul", ["res", "w1"], ["f1"], name="ffn1"),
        # GELU written as torch exports it: x * (1 + erf(x / sqrt(2))) * 0.5
        helper.make_node("Div", ["f1", "sqrt2"], ["f1_s"], name="gelu_div"),
        helper.make_node("Erf", ["f1_s"], ["f1_erf"], name="gelu_erf"),
    ]
    nodes += [
        helper.make_node("Add", ["f1_erf", "one"], ["f1_1"], name="gelu_add"),
        helper.make_node("Mul", ["f1", "f1_1"], ["f1_m"], name="gelu_mul"),
        helper.make_node("Mul", ["f1_m", "half"], ["g1"], name="gelu_half"),
        helper.make_node("MatMul", ["g1", "w2"], ["f2"], name="ffn2"),
        helper.make_node("Add", ["f2", "res"], ["out"], name="ffn_residual"),
    ]
    inits = [
        i64("idx0", 0), i64("idx1", 1), i64("axes0", [0]), i64("heads", [h]), i64("head_dim", [hd]),
        i64("model_dim", [d]),
        numpy_helper.from_array(np.ones(d, np.float32), "ln_g"), numpy_helper.from_array(np.zeros(d, np.float32), "ln_b"),
        w("wq", d, d), w("bq", d), w("wk", d, d), w("bk", d), w("wv", d, d), w("bv", d), w("wo", d, d), w("bo", d),
        w("w1", d, 4 * d), w("w2", 4 * d, d),
        numpy_helper.from_array(np.array(np.sqrt(hd), np.float32), "scale"),
        numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    g = helper.make_graph(nodes, "tiny_attention",
                          [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq", d])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq", d])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-models")


def weights(model):
    return {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}


def conv3x3(x, wt, b):
    n, c, hh, ww = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, wt.shape[0], hh, ww))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + hh, j:j + ww], wt[:, :, i, j])
    return out + b[None, :, None, None]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_tiny_cnn(p, x):
    """Independent float64 reference of tiny_cnn, for kiln's end-to-end tests."""
    r1 = np.maximum(conv3x3(x, p["c1_w"], p["c1_b"]), 0)
    r2 = np.maximum(conv3x3(r1, p["c2_w"], p["c2_b"]) + r1, 0)
    n, c, hh, ww = r2.shape
    p1 = r2.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    gap = p1.mean(axis=(2, 3))
    return softmax(gap @ p["fc_w"].T + p["fc_b"])


def ref_tiny_attention(p, x):
    b, s, d = x.shape
    h, hd = 4, d // 4
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    ln = (x - mu) / np.sqrt(var + 1e-5) * p["ln_g"] + p["ln_b"]
    heads = lambda t: t.reshape(b, s, h, hd).transpose(0, 2, 1, 3)
    q, k, v = (heads(ln @ p["w" + n] + p["b" + n]) for n in "qkv")
    attn = softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd))
    ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
    res = ctx @ p["wo"] + p["bo"] + x
    from math import erf
    f1 = res @ p["w1"]
    g1 = f1 * 0.5 * (1 + np.vectorize(erf)(f1 / np.sqrt(2.0)))
    return g1 @ p["w2"] + res


def main():
    os.makedirs(HERE, exist_ok=True)
    cases = (("tiny_cnn", tiny_cnn(), ref_tiny_cnn, (3, 3, 32, 32)),
             ("tiny_attention", tiny_attention(), ref_tiny_attention, (2, 5, 32)))
    for name, model, ref, shape in cases:
        onnx.checker.check_model(model)
        path = os.path.join(HERE, name + ".onnx")
        onnx.save(model, path)
        x = rng.standard_normal(shape).astype(np.float32)
        np.save(os.path.join(HERE, name + ".input.npy"), x)
        np.save(os.path.join(HERE, name + ".expected.npy"), ref(weights(model), x.astype(np.float64)).astype(np.float32))
        print("wrote", os.path.normpath(path), "and its reference input/output")


if __name__ == "__main__":
    main()
