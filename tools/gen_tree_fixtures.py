#!/usr/bin/python3
"""Writes the tree engine's fixtures under tests/fixtures/trees/ with Debian's python3-xgboost.

Each fixture is one XGBoost model trained here on synthetic data with fixed seeds:

    tests/fixtures/trees/<name>/model.json   save_model("model.json")
    tests/fixtures/trees/<name>/model.ubj    save_model("model.ubj"), the same model
    tests/fixtures/trees/<name>/x.npy        float32 [n, num_features] rows (NaN = missing)
    tests/fixtures/trees/<name>/margin.npy   float32 predict(output_margin=True)
    tests/fixtures/trees/<name>/pred.npy     float32 predict()
    tests/fixtures/trees/manifest.json       per fixture: objective, features, trees, depth...

The test rows mix random rows with rows whose values sit exactly on split thresholds (so that
`x < threshold` is tested at equality), missing values where the fixture has them, and for
categorical fixtures unseen, negative and fractional categories.

Broken models (tests/fixtures/trees/broken/) are small valid models with one thing wrong each;
broken/expected.json maps each file to a piece of the error message the loader must give.

Usage: /usr/bin/python3 tools/gen_tree_fixtures.py [--check-only]
Deterministic: a rerun writes byte-identical files.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import xgboost as xgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "trees")


def make_dmatrix(x, label=None, feature_types=None, group=None):
    kw = {}
    if feature_types is not None and "c" in feature_types:
        kw = {"feature_types": feature_types, "enable_categorical": True}
    d = xgb.DMatrix(x, label=label, missing=np.nan, **kw)
    if group is not None:
        d.set_group(group)
    return d


def tree_stats(booster):
    model = json.loads(booster.save_raw("json"))
    gb = model["learner"]["gradient_booster"]
    trees = (gb["gbtree"] if gb["name"] == "dart" else gb)["model"]["trees"]
    max_depth = 0
    for t in trees:
        depth = {0: 0}
        stack = [0]
        while stack:
            n = stack.pop()
            for c in (t["left_children"][n], t["right_children"][n]):
                if c >= 0:
                    depth[c] = depth[n] + 1
                    max_depth = max(max_depth, depth[c])
                    stack.append(c)
    return model, trees, max_depth


def threshold_rows(trees, x, rng, n):
    """Rows copied from x with some features set exactly to split thresholds of the model."""
    splits = []
    for t in trees:
        for i, left in enumerate(t["left_children"]):
            if left >= 0 and t.get("split_type", [0] * (i + 1))[i] == 0:
                splits.append((t["split_indices"][i], t["split_conditions"][i]))
    rows = x[rng.integers(0, len(x), n)].copy()
    for r in range(n):
        for _ in range(3):
            f, v = splits[rng.integers(0, len(splits))]
            rows[r, f] = np.float32(v)
    return rows


class Fixture:
    def __init__(self, name, params, rounds, x, y, test_x, feature_types=None, group=None,
                 extra=None):
        self.name, self.params, self.rounds = name, params, rounds
        self.x, self.y, self.test_x = x, y, test_x
        self.feature_types, self.group, self.extra = feature_types, group, extra or {}


def numeric_data(rng, n, f, nan_frac=0.0):
    x = rng.normal(size=(n, f)).astype(np.float32)
    if nan_frac:
        x[rng.random(size=x.shape) < nan_frac] = np.nan
    return x


def fixtures():
    out = []
    rng = np.random.default_rng(1234)

    def binary_label(x):
        z = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) ** 2 - np.nan_to_num(x[:, 2])
        return (z + 0.3 * rng.normal(size=len(x)) > 0.3).astype(np.float32)

    x = numeric_data(rng, 600, 10)
    out.append(Fixture("binary", {"objective": "binary:logistic", "max_depth": 4}, 20, x,
                       binary_label(x), numeric_data(rng, 48, 10)))

    x = numeric_data(rng, 600, 10)
    y = (x[:, 0] * 3 + np.sin(x[:, 1] * 2) + x[:, 2] * x[:, 3]).astype(np.float32)
    out.append(Fixture("regression", {"objective": "reg:squarederror", "max_depth": 5}, 20, x, y,
                       numeric_data(rng, 48, 10)))

    x = numeric_data(rng, 600, 8)
    y = (np.digitize(x[:, 0] + x[:, 1], [-1.0, 0.0, 1.0])).astype(np.float32)
    out.append(Fixture("multiclass_softprob", {"objective": "multi:softprob", "num_class": 4,
                                               "max_depth": 3}, 10, x, y, numeric_data(rng, 48, 8)))
    x = numeric_data(rng, 600, 8)
    y = (np.digitize(x[:, 2] - x[:, 3], [-0.5, 0.5])).astype(np.float32)
    out.append(Fixture("multiclass_softmax", {"objective": "multi:softmax", "num_class": 3,
                                              "max_depth": 3}, 8, x, y, numeric_data(rng, 48, 8)))

    x = numeric_data(rng, 600, 8)
    y = np.clip(np.round(x[:, 0] + x[:, 1] + 2), 0, 4).astype(np.float32)
    out.append(Fixture("ranking", {"objective": "rank:pairwise", "max_depth": 4}, 15, x, y,
                       numeric_data(rng, 48, 8), group=[20] * 30))

    x = numeric_data(rng, 600, 8)
    y = rng.poisson(np.exp(0.5 * x[:, 0] + 0.3 * x[:, 1])).astype(np.float32)
    out.append(Fixture("poisson", {"objective": "count:poisson", "max_depth": 3}, 15, x, y,
                       numeric_data(rng, 48, 8)))

    x = numeric_data(rng, 800, 10, nan_frac=0.3)
    out.append(Fixture("missing", {"objective": "binary:logistic", "max_depth": 4}, 20, x,
                       binary_label(x), numeric_data(rng, 64, 10, nan_frac=0.3)))

    # Categorical: features 1 and 4 hold categories (12 and 40 of them), partition splits.
    def cat_data(n):
        x = numeric_data(rng, n, 6)
        x[:, 1] = rng.integers(0, 12, n)
        x[:, 4] = rng.integers(0, 40, n)
        x[rng.random(size=x.shape) < 0.05] = np.nan
        return x

    types = ["q", "c", "q", "q", "c", "q"]
    x = cat_data(800)
    y = (np.nan_to_num(x[:, 0]) + np.isin(x[:, 1], [1, 3, 5, 7]) * 1.5 +
         np.isin(x[:, 4], np.arange(0, 40, 3)) - 1.0).astype(np.float32)
    tx = cat_data(64)
    tx[:8, 1] = [12, 50, -1, 3.5, 1.9, 1e9, 16777216, -0.5]  # unseen, negative, fractional
    tx[8:16, 4] = [40, 100, -3, 2.5, 39.99, np.nan, 0, 39]
    out.append(Fixture("categorical", {"objective": "reg:squarederror", "max_depth": 4,
                                       "tree_method": "hist", "max_cat_to_onehot": 1}, 20, x, y,
                       tx, feature_types=types))

    types2 = ["c", "q", "q", "q"]
    x = numeric_data(rng, 600, 4)
    x[:, 0] = rng.integers(0, 5, 600)
    y = ((x[:, 0] + (x[:, 1] > 0)) % 3).astype(np.float32)
    tx = numeric_data(rng, 32, 4)
    tx[:, 0] = rng.integers(-1, 7, 32)
    out.append(Fixture("categorical_onehot", {"objective": "multi:softprob", "num_class": 3,
                                              "max_depth": 3, "tree_method": "hist",
                                              "max_cat_to_onehot": 8}, 6, x, y, tx,
                       feature_types=types2))

    x = numeric_data(rng, 1500, 6)
    y = (np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]) + x[:, 2] * x[:, 3] +
         0.1 * rng.normal(size=1500)).astype(np.float32)
    out.append(Fixture("deep", {"objective": "reg:squarederror", "max_depth": 12,
                                "min_child_weight": 0, "lambda": 0.01, "eta": 0.5}, 2, x, y,
                       numeric_data(rng, 48, 6), extra={"want_depth": 12}))

    x = numeric_data(rng, 400, 6)
    out.append(Fixture("wide", {"objective": "binary:logistic", "max_depth": 1, "eta": 0.05}, 1000,
                       x, binary_label(x), numeric_data(rng, 32, 6)))

    x = numeric_data(rng, 500, 6)
    y = (x[:, 0] * 2 + x[:, 1] ** 2).astype(np.float32)
    out.append(Fixture("dart", {"objective": "reg:squarederror", "booster": "dart", "max_depth": 3,
                                "rate_drop": 0.3, "skip_drop": 0.0}, 10, x, y,
                       numeric_data(rng, 32, 6)))

    x = numeric_data(rng, 500, 6)
    y = np.stack([x[:, 0] * 2 + x[:, 1], np.abs(x[:, 2]) - x[:, 3]], 1).astype(np.float32)
    out.append(Fixture("multi_target", {"objective": "reg:squarederror", "tree_method": "hist",
                                        "max_depth": 3}, 8, x, y, numeric_data(rng, 32, 6)))

    x = numeric_data(rng, 500, 6)
    out.append(Fixture("random_forest", {"objective": "binary:logistic", "max_depth": 4,
                                         "num_parallel_tree": 4, "subsample": 0.7,
                                         "colsample_bynode": 0.7, "eta": 1.0}, 2, x,
                       binary_label(x), numeric_data(rng, 32, 6)))

    # One small model per remaining objective.
    small = [
        ("logitraw", "binary:logitraw", "binary", {"base_score": 0.3}),
        ("reg_logistic", "reg:logistic", "unit", {}),
        ("hinge", "binary:hinge", "binary", {}),
        ("gamma", "reg:gamma", "positive", {}),
        ("tweedie", "reg:tweedie", "positive", {}),
        ("squaredlogerror", "reg:squaredlogerror", "positive", {}),
        ("pseudohuber", "reg:pseudohubererror", "real", {}),
        ("absoluteerror", "reg:absoluteerror", "real", {}),
        ("cox", "survival:cox", "survival", {}),
        ("ndcg", "rank:ndcg", "rank", {}),
        ("map", "rank:map", "binary_rank", {}),
    ]
    for name, objective, kind, params in small:
        x = numeric_data(rng, 400, 5)
        z = x[:, 0] + 0.5 * x[:, 1]
        y = {"binary": (z > 0).astype(np.float32),
             "binary_rank": (z > 0).astype(np.float32),
             "unit": 1 / (1 + np.exp(-z)),
             "positive": np.exp(0.5 * z) + 0.1,
             "real": z * 2 + 1,
             "survival": np.where(rng.random(400) < 0.8, 1, -1) * (np.exp(z) + 0.1),
             "rank": np.clip(np.round(z + 2), 0, 4)}[kind].astype(np.float32)
        group = [20] * 20 if "rank" in kind else None
        out.append(Fixture(name, dict({"objective": objective, "max_depth": 3}, **params), 6, x, y,
                           numeric_data(rng, 24, 5), group=group))
    return out


def build(fx, rng):
    params = dict({"seed": 7, "nthread": 1, "eta": 0.3}, **fx.params)
    train = make_dmatrix(fx.x, fx.y, fx.feature_types, fx.group)
    booster = xgb.train(params, train, fx.rounds)
    model, trees, depth = tree_stats(booster)
    if "want_depth" in fx.extra and depth != fx.extra["want_depth"]:
        sys.exit(f"{fx.name}: depth {depth}, wanted {fx.extra['want_depth']}")
    test_x = fx.test_x
    if fx.feature_types is None or "c" not in fx.feature_types:
        test_x = np.concatenate([test_x, threshold_rows(trees, fx.x, rng, 16)])
    test_x = np.ascontiguousarray(test_x, dtype=np.float32)
    test = make_dmatrix(test_x, feature_types=fx.feature_types)
    margin = booster.predict(test, output_margin=True).astype(np.float32)
    pred = booster.predict(test).astype(np.float32)
    # The in-place predictor (what the benchmark compares against) must agree with predict().
    if fx.feature_types is None and fx.params.get("booster") != "dart":
        inplace = booster.inplace_predict(test_x, predict_type="margin")
        assert np.array_equal(inplace, margin), fx.name
    lp = model["learner"]["learner_model_param"]
    info = {
        "objective": fx.params["objective"],
        "booster": model["learner"]["gradient_booster"]["name"],
        "num_features": int(lp["num_feature"]),
        "num_class": int(lp["num_class"]),
        "num_trees": len(trees),
        "max_depth": depth,
        "rows": int(test_x.shape[0]),
        "margin_shape": list(margin.shape),
        "pred_shape": list(pred.shape),
        "has_missing": bool(np.isnan(test_x).any()),
        "categorical": fx.feature_types is not None and "c" in fx.feature_types,
    }
    return booster, test_x, margin, pred, info


# ------------------------------------------------------------------------------------------
# Broken models
# ------------------------------------------------------------------------------------------

def ubj_int(v):
    return b"L" + struct.pack(">q", v)


def ubj_key(s):
    b = s.encode()
    return ubj_int(len(b)) + b


def broken_models(good_json, good_ubj, gblinear_json):
    """(file name, bytes, expected error substring)."""
    base = json.loads(good_json)

    def mutate(fn):
        m = json.loads(good_json)
        fn(m)
        return json.dumps(m).encode()

    def tree0(m):
        return m["learner"]["gradient_booster"]["model"]["trees"][0]

    def lmp(m):
        return m["learner"]["learner_model_param"]

    n0 = len(tree0(base)["left_children"])
    # Internal nodes of tree 0 in node order (the generator makes sure there are several).
    inner = [i for i, c in enumerate(tree0(base)["left_children"]) if c >= 0]
    assert len(inner) >= 3, inner
    cases = [
        ("empty.json", b"", "the file is empty"),
        ("truncated.json", good_json[: len(good_json) // 2], "invalid JSON at byte"),
        ("truncated.ubj", good_ubj[: len(good_ubj) // 2], "invalid UBJSON at byte"),
        ("not_a_model.json", b"[1, 2, 3]", "expected an object at the top level"),
        ("garbage.ubj", b"\x00\x01\x02garbage", "unknown type marker"),
        ("deep_nesting.json", b"[" * 1000 + b"]" * 1000, "nesting deeper than 64"),
        ("deep_nesting.ubj", b"[" * 1000 + b"]" * 1000, "nesting deeper than 64"),
        ("huge_count.ubj", b"[$d#" + ubj_int(1 << 60) + b"\x00" * 16,
         "runs past the end of the file"),
        ("huge_string.ubj", b"{" + ubj_int(1 << 40) + b"abc", "runs past the end of the file"),
        ("nul_byte.json", good_json + b"\x00{}", "unexpected text after the end of the document"),
        ("wrong_type_left_children.json",
         mutate(lambda m: tree0(m).__setitem__("left_children", "1,2")),
         "tree 0: field 'left_children': expected an array of numbers, got string"),
        ("wrong_type_element.json",
         mutate(lambda m: tree0(m)["split_conditions"].__setitem__(0, "x")),
         "tree 0: field 'split_conditions': element 0: expected a number, got string"),
        ("fractional_index.json",
         mutate(lambda m: tree0(m)["split_indices"].__setitem__(0, 1.5)),
         "tree 0: field 'split_indices': element 0: 1.5 is not an integer"),
        ("missing_split_conditions.json",
         mutate(lambda m: tree0(m).pop("split_conditions")),
         "tree 0: missing field 'split_conditions'"),
        ("missing_learner.json", mutate(lambda m: m.pop("learner")),
         "model: missing field 'learner'"),
        ("missing_num_feature.json", mutate(lambda m: lmp(m).pop("num_feature")),
         "learner.learner_model_param: missing field 'num_feature'"),
        ("child_out_of_range.json",
         mutate(lambda m: tree0(m)["left_children"].__setitem__(0, 99)),
         "tree 0: field 'left_children': element 0: 99 is outside [-1, %d]" % (n0 - 1)),
        ("cycle.json",
         mutate(lambda m: tree0(m)["left_children"].__setitem__(inner[1], 0)),
         "tree 0: node 0 is reached twice (child of node %d)" % inner[1]),
        ("shared_child.json",
         mutate(lambda m: tree0(m)["left_children"].__setitem__(
             inner[1], tree0(m)["left_children"][0])),
         "tree 0: node %d is reached twice" % base["learner"]["gradient_booster"]["model"]
         ["trees"][0]["left_children"][0]),
        ("half_leaf.json",
         mutate(lambda m: tree0(m)["right_children"].__setitem__(0, -1)),
         "tree 0: node 0 has left child 1 and right child -1"),
        ("feature_index_huge.json",
         mutate(lambda m: tree0(m)["split_indices"].__setitem__(0, 10 ** 12)),
         "tree 0: field 'split_indices': element 0: 1000000000000 is outside"),
        ("feature_out_of_range.json",
         mutate(lambda m: tree0(m)["split_indices"].__setitem__(0, int(lmp(m)["num_feature"]))),
         "tree 0: node 0: field 'split_indices' is"),
        ("num_nodes_mismatch.json",
         mutate(lambda m: tree0(m)["tree_param"].__setitem__("num_nodes", str(n0 + 2))),
         "tree 0: field 'left_children' has %d entries but tree_param.num_nodes is %d" %
         (n0, n0 + 2)),
        ("num_trees_mismatch.json",
         mutate(lambda m: m["learner"]["gradient_booster"]["model"]["gbtree_model_param"]
                .__setitem__("num_trees", "7")),
         "but gbtree_model_param.num_trees is 7"),
        ("tree_info_out_of_range.json",
         mutate(lambda m: m["learner"]["gradient_booster"]["model"]["tree_info"]
                .__setitem__(0, 3)),
         "field 'tree_info': element 0: 3 is outside [0, 0]"),
        ("unknown_objective.json",
         mutate(lambda m: m["learner"]["objective"].__setitem__("name", "reg:quantileerror")),
         "objective 'reg:quantileerror' is not supported"),
        ("bad_base_score.json", mutate(lambda m: lmp(m).__setitem__("base_score", "1.5E0")),
         "base_score 1.5 must be in (0, 1) for objective binary:logistic"),
        ("vector_leaf.json",
         mutate(lambda m: tree0(m)["tree_param"].__setitem__("size_leaf_vector", "3")),
         "vector leaves"),
        ("gblinear.json", gblinear_json, "gradient_booster 'gblinear' is not supported"),
        ("duplicate_tree_id.json",
         mutate(lambda m: m["learner"]["gradient_booster"]["model"]["trees"][1]
                .__setitem__("id", 0)),
         "id 0 is used twice"),
    ]
    return cases


def write_npy(path, a):
    # np.save writes a fixed header, so files are byte-identical across runs.
    np.save(path, a, allow_pickle=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(99)
    built = []
    for fx in fixtures():
        built.append((fx.name,) + build(fx, rng))
        name, _, test_x, margin, pred, info = built[-1]
        print(f"{name:22s} {info['objective']:22s} trees {info['num_trees']:4d} "
              f"depth {info['max_depth']:2d} rows {info['rows']}")

    bx = built[0][2][:, :4]
    good = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 7, "nthread": 1},
                     make_dmatrix(bx, (bx[:, 0] + bx[:, 1] * bx[:, 2] > 0).astype(np.float32)), 2)
    lin = xgb.train({"booster": "gblinear", "seed": 7, "nthread": 1},
                    make_dmatrix(built[0][2][:, :4], built[0][2][:, 0]), 2)
    broken = broken_models(bytes(good.save_raw("json")), bytes(good.save_raw("ubj")),
                           bytes(lin.save_raw("json")))
    if args.check_only:
        return

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "broken"))
    manifest = {}
    for name, booster, test_x, margin, pred, info in built:
        d = os.path.join(OUT, name)
        os.makedirs(d)
        booster.save_model(os.path.join(d, "model.json"))
        booster.save_model(os.path.join(d, "model.ubj"))
        write_npy(os.path.join(d, "x.npy"), test_x)
        write_npy(os.path.join(d, "margin.npy"), margin)
        write_npy(os.path.join(d, "pred.npy"), pred)
        manifest[name] = info
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    expected = {}
    for fname, data, message in broken:
        with open(os.path.join(OUT, "broken", fname), "wb") as f:
            f.write(data)
        expected[fname] = message
    with open(os.path.join(OUT, "broken", "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn))
                for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
