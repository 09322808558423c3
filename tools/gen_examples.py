#!/usr/bin/python3
"""Writes the example model repository served by `make serve` (examples/models/).

The ONNX models of mlp_ranker, cnn and transformer are the engine's test fixtures
(tools/gen_models.py); this script copies them in and writes `simple`, the classic Triton
add/sub model (INT32 INPUT0, INPUT1 [16] -> OUTPUT0 = sum, OUTPUT1 = difference) that Triton's
client examples use.

    /usr/bin/python3 tools/gen_examples.py
"""
import os
import shutil

import onnx
from onnx import TensorProto, helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
REPO = os.path.join(ROOT, "examples", "models")


def write_simple(path):
    dims = ["batch", 16]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT32, dims) for n in ("INPUT0", "INPUT1")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.INT32, dims) for n in ("OUTPUT0", "OUTPUT1")]
    nodes = [
        helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
        helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub"),
    ]
    graph = helper.make_graph(nodes, "simple", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="flywheel-tools")
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def main():
    write_simple(os.path.join(REPO, "simple", "1", "model.onnx"))
    for name in ("mlp_ranker", "cnn", "transformer"):
        dst = os.path.join(REPO, name, "1")
        os.makedirs(dst, exist_ok=True)
        shutil.copyfile(os.path.join(ROOT, "tests", "fixtures", "models", name, "model.onnx"),
                        os.path.join(dst, "model.onnx"))


if __name__ == "__main__":
    main()
