#!/usr/bin/env python3
"""Writes models/gated_encoder.onnx, the model of docs/extract.md's modular-compilation example (fixed seed), and
models/gated_encoder.detail_w.npy, the detail head's weight as the example's own code holds it.

x[batch,16] -> a stateless encoder (MatMul, Add, Relu, MatMul, Add) -> features[batch,16]
            -> a data-dependent If: when mean(features) > 0 the "detail" head (a MatMul whose weight and input
               the branch reads from the outer scope), else the "fast" head (Relu) -> out[batch,16].
The branch depends on the values, not the shapes, so no build can fold it: the example keeps it in the user's
code and builds only the encoder, cut out with `kiln extract`.
Needs numpy and onnx (Debian: python3-numpy python3-onnx). Run: python3 scripts/make_gated_encoder.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
rng = np.random.default_rng(20240519)


def w(name, *shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def gated_encoder():
    d, hidden = 16, 32
    detail = helper.make_graph(
        [helper.make_node("MatMul", ["features", "detail_w"], ["detail_out"], name="detail_fc")],
        "detail_head", [], [helper.make_tensor_value_info("detail_out", TensorProto.FLOAT, ["batch", d])])
    fast = helper.make_graph(
        [helper.make_node("Relu", ["features"], ["fast_out"], name="fast_relu")],
        "fast_head", [], [helper.make_tensor_value_info("fast_out", TensorProto.FLOAT, ["batch", d])])
    nodes = [
        helper.make_node("MatMul", ["x", "enc_w1"], ["h1"], name="enc_fc1"),
        helper.make_node("Add", ["h1", "enc_b1"], ["h1b"], name="enc_bias1"),
        helper.make_node("Relu", ["h1b"], ["h1r"], name="enc_relu"),
        helper.make_node("MatMul", ["h1r", "enc_w2"], ["h2"], name="enc_fc2"),
        helper.make_node("Add", ["h2", "enc_b2"], ["features"], name="enc_bias2"),
        helper.make_node("ReduceMean", ["features"], ["score"], name="gate_mean", keepdims=0),
        helper.make_node("Greater", ["score", "zero"], ["use_detail"], name="gate"),
        helper.make_node("If", ["use_detail"], ["out"], name="route", then_branch=detail, else_branch=fast),
    ]
    w1, b1, w2 = (rng.standard_normal(s).astype(np.float32) * k for s, k in (((d, hidden), 0.3), (hidden, 0.1),
                                                                              ((hidden, d), 0.3)))
    # The bias centres mean(features) near 0 for x ~ N(0, 1), so the gate goes either way with the input.
    probe = rng.standard_normal((4096, d)).astype(np.float32)
    b2 = 0.1 * rng.standard_normal(d)
    b2 = (b2 - b2.mean() - (np.maximum(probe @ w1 + b1, 0) @ w2).mean()).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "enc_w1"), numpy_helper.from_array(b1, "enc_b1"),
             numpy_helper.from_array(w2, "enc_w2"), numpy_helper.from_array(b2, "enc_b2"), w("detail_w", d, d),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    g = helper.make_graph(nodes, "gated_encoder",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", d])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", d])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-models",
                             ir_version=8)


def main():
    model = gated_encoder()
    onnx.checker.check_model(model)
    path = os.path.join(HERE, "gated_encoder.onnx")
    onnx.save(model, path)
    detail_w = next(t for t in model.graph.initializer if t.name == "detail_w")
    np.save(os.path.join(HERE, "gated_encoder.detail_w.npy"), numpy_helper.to_array(detail_w))
    print("wrote", os.path.normpath(path), "and the detail head's weight")


if __name__ == "__main__":
    main()
