#!/usr/bin/python3
"""Writes ONNX models with a single MatMul Y[M,N] = A[M,K] x B[K,N] for the GEMM section of
bench/compare_ort.sh: A is the graph input "A" (f32, fixed shape), B a constant initializer
with seeded random values in [-1, 1). One file per shape: DIR/matmul_MxKxN.onnx.

Usage: /usr/bin/python3 bench/make_gemm_models.py DIR [M,K,N ...]
  (default shapes: 1024,1024,1024  128,768,768  128,768,3072). Prints the written paths.
Existing files are left alone (the weights are a pure function of the shape).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_SHAPES = [(1024, 1024, 1024), (128, 768, 768), (128, 768, 3072)]
OPSET = 13


def model_path(out_dir, m, k, n):
    return os.path.join(out_dir, f"matmul_{m}x{k}x{n}.onnx")


def make_model(m, k, n):
    rng = np.random.default_rng(1000 * m + 10 * k + n)
    weight = rng.uniform(-1.0, 1.0, size=(k, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul")],
        f"matmul_{m}x{k}x{n}",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        initializer=[numpy_helper.from_array(weight, name="B")],
    )
    model = helper.make_model(graph, producer_name="kiln-bench",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ensure_model(out_dir, m, k, n):
    """Writes DIR/matmul_MxKxN.onnx unless it exists; returns its path."""
    path = model_path(out_dir, m, k, n)
    if not os.path.exists(path):
        os.makedirs(out_dir, exist_ok=True)
        tmp = path + ".tmp"
        onnx.save(make_model(m, k, n), tmp)
        os.replace(tmp, path)
    return path


def parse_shape(text):
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3 or min(parts) <= 0:
        raise SystemExit(f"make_gemm_models: bad shape '{text}' (want M,K,N)")
    return tuple(parts)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir = argv[1]
    shapes = [parse_shape(s) for s in argv[2:]] or DEFAULT_SHAPES
    for m, k, n in shapes:
        print(ensure_model(out_dir, m, k, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
