#!/usr/bin/python3
"""Writes the ranker of the feature-store example (examples/feature_models/ranker/1/model.onnx).

The ensemble `rank_with_features` looks up one user's features ([1, U]) and N candidate items'
features ([N, I]) and hands both to this model, which scores every item for the user:

    u = log(1 + relu(user))                      [1, U]
    v = log(1 + relu(items))                     [N, I]
    h = relu(v @ W_item + u @ W_user + b)        [N, H]  (the user row broadcasts over the items)
    score = sigmoid(h @ w_out + b_out)           [N]

Counts and sums from the feature store are log-scaled so that scores stay in the sigmoid's useful
range. The weights come from a fixed seed: a rerun writes the same file. Tests read the weights
back from the file (onnx.numpy_helper) to compute the expected scores.

    /usr/bin/python3 tools/gen_feature_ranker.py [--user-features 3] [--item-features 3]
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "examples", "feature_models", "ranker", "1", "model.onnx")
HIDDEN = 8


def build(user_features, item_features, seed=7):
    rng = np.random.RandomState(seed)
    weights = {
        "W_user": rng.normal(0, 0.6, (user_features, HIDDEN)).astype(np.float32),
        "W_item": rng.normal(0, 0.6, (item_features, HIDDEN)).astype(np.float32),
        "b": rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32),
        "w_out": rng.normal(0, 0.6, (HIDDEN, 1)).astype(np.float32),
        "b_out": np.array([-0.2], dtype=np.float32),
        "one": np.array(1.0, dtype=np.float32),
        "flat": np.array([-1], dtype=np.int64),
    }
    inputs = [
        helper.make_tensor_value_info("user", TensorProto.FLOAT, [1, user_features]),
        helper.make_tensor_value_info("items", TensorProto.FLOAT, ["n", item_features]),
    ]
    outputs = [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])]
    node = helper.make_node
    nodes = []
    for name in ("user", "items"):
        nodes += [
            node("Relu", [name], [name + "_pos"]),
            node("Add", [name + "_pos", "one"], [name + "_1p"]),
            node("Log", [name + "_1p"], [name + "_log"]),
        ]
    nodes += [
        node("MatMul", ["items_log", "W_item"], ["h_item"]),
        node("MatMul", ["user_log", "W_user"], ["h_user"]),
        node("Add", ["h_item", "h_user"], ["h_sum"]),
        node("Add", ["h_sum", "b"], ["h_pre"]),
        node("Relu", ["h_pre"], ["h"]),
        node("MatMul", ["h", "w_out"], ["logit_col"]),
        node("Add", ["logit_col", "b_out"], ["logit_2d"]),
        node("Reshape", ["logit_2d", "flat"], ["logit"]),
        node("Sigmoid", ["logit"], ["score"]),
    ]
    initializers = [numpy_helper.from_array(v, name=k) for k, v in weights.items()]
    graph = helper.make_graph(nodes, "feature_ranker", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="flywheel-tools")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(model, user, items):
    """The scores in float64 from the weights stored in `model` (what the tests compare with)."""
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    u = np.log1p(np.maximum(np.asarray(user, np.float64), 0))
    v = np.log1p(np.maximum(np.asarray(items, np.float64), 0))
    h = np.maximum(v @ w["W_item"] + u @ w["W_user"] + w["b"], 0)
    return 1 / (1 + np.exp(-((h @ w["w_out"]).reshape(-1) + w["b_out"][0])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user-features", type=int, default=3)
    parser.add_argument("--item-features", type=int, default=3)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    model = build(args.user_features, args.item_features)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    onnx.save(model, args.out)
    scores = reference(model, np.ones((1, args.user_features)),
                       np.arange(2 * args.item_features).reshape(2, args.item_features))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes); scores of a sample: {scores}")


if __name__ == "__main__":
    main()
