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


def write_trees(path):
    """A fraud-style binary classifier: 100 trees of depth 6 over 16 features, some missing."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(7)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 3] + rng.normal(0, 0.5, 4000)) > 0.3)
    x[rng.random(x.shape) < 0.05] = np.nan
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 7},
                        xgb.DMatrix(x, label=y.astype(np.float32)), num_boost_round=100)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    booster.save_model(path)
    # Rows and XGBoost's own probabilities, for the end-to-end test of the served model.
    fixtures = os.path.join(ROOT, "tests", "fixtures", "serving")
    os.makedirs(fixtures, exist_ok=True)
    rows = x[:64]
    np.save(os.path.join(fixtures, "fraud_trees_x.npy"), rows)
    np.save(os.path.join(fixtures, "fraud_trees_p1.npy"),
            booster.predict(xgb.DMatrix(rows)).astype(np.float32))


def main():
    write_trees(os.path.join(REPO, "fraud_trees", "1", "xgboost.json"))
    write_simple(os.path.join(REPO, "simple", "1", "model.onnx"))
    for name in ("mlp_ranker", "cnn", "transformer"):
        dst = os.path.join(REPO, name, "1")
        os.makedirs(dst, exist_ok=True)
        shutil.copyfile(os.path.join(ROOT, "tests", "fixtures", "models", name, "model.onnx"),
                        os.path.join(dst, "model.onnx"))


if __name__ == "__main__":
    main()
