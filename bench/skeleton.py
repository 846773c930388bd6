#!/usr/bin/env python3
"""Moves exported models between machines without their weights.

    python3 bench/skeleton.py strip MODEL.onnx OUT.skel.onnx   # drop weight bytes, keep names/dtypes/dims
    python3 bench/skeleton.py fill  IN.skel.onnx OUT.onnx      # random weights of the same dims (seed 0)
    python3 bench/skeleton.py dump  MODEL.onnx                 # op histogram and node list, one line each

A skeleton keeps every node, attribute and small constant (<= 64 elements: shape math, scales, eps), so passes
and the CPU backend can be exercised on the real graph structure on a machine without torch.
"""
import sys
from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

SMALL = 64


def strip(src, dst):
    m = onnx.load(src)
    for t in m.graph.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if n > SMALL:
            dims, dtype, name = list(t.dims), t.data_type, t.name
            t.Clear()
            t.name, t.data_type = name, dtype
            t.dims.extend(dims)
            t.doc_string = "kiln-skeleton"
    onnx.save(m, dst)


def fill(src, dst):
    m = onnx.load(src)
    rng = np.random.default_rng(0)
    for t in m.graph.initializer:
        if t.doc_string != "kiln-skeleton":
            continue
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
        dims = list(t.dims)
        if np.issubdtype(dtype, np.floating):
            a = (rng.standard_normal(dims) * 0.05).astype(dtype)
        else:
            a = np.zeros(dims, dtype)
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    onnx.save(m, dst)


def dump(src):
    m = onnx.load(src, load_external_data=False)
    g = m.graph
    print("opset", [(o.domain, o.version) for o in m.opset_import])
    print("inputs", [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in g.input])
    print("ops", sorted(Counter(n.op_type for n in g.node).items()))
    shapes = {t.name: list(t.dims) for t in g.initializer}
    for n in g.node:
        attrs = []
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto):
                v = numpy_helper.to_array(v).tolist() if np.prod(v.dims) <= 8 else f"tensor{list(v.dims)}"
            elif isinstance(v, bytes):
                v = v.decode()
            attrs.append(f"{a.name}={v}")
        ins = [f"{i}{shapes[i]}" if i in shapes else i for i in n.input]
        print(f"{n.op_type} {n.name} ({', '.join(ins)}) -> ({', '.join(n.output)}) {' '.join(attrs)}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "strip":
        strip(sys.argv[2], sys.argv[3])
    elif cmd == "fill":
        fill(sys.argv[2], sys.argv[3])
    elif cmd == "dump":
        dump(sys.argv[2])
    else:
        sys.exit(__doc__)
