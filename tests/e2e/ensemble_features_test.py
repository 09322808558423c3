#!/usr/bin/python3
"""End to end: features inside inference. The real `flywheel serve --features examples/features`
serves examples/feature_models; clicks are pushed to /v1/features/push, then one call to the
ensemble `rank_with_features` with only a user id and candidate item ids returns the features the
store computed (looked up in process by the feature_lookup steps) and the ranker's scores, which
equal the ranker computed in NumPy from the weights in its ONNX file. Also: the lookup models on
their own (presence flags), the ensemble's metadata, configuration and statistics, bad requests,
and a server started without --features (the feature models and the ensemble are UNAVAILABLE,
saying why).

    /usr/bin/python3 tests/e2e/ensemble_features_test.py PATH/TO/flywheel [unittest args]
"""
import json
import math
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from gen_feature_ranker import reference  # noqa: E402
from server_util import FlywheelServer  # noqa: E402

FLYWHEEL = None
MODELS = os.path.join(ROOT, "examples", "feature_models")
FEATURES = os.path.join(ROOT, "examples", "features")
USER_FEATURES = ["user_clicks:clicks_1h", "user_clicks:clicks_10m", "user_clicks:dwell_1h"]
ITEM_FEATURES = ["item_clicks:clicks_1h", "item_clicks:users_1h", "item_clicks:mean_dwell_1h"]


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def tensor(name, values, datatype="BYTES"):
    return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}


def outputs_of(reply):
    """{name: numpy array} of a JSON inference reply."""
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in reply["outputs"]}


def click_events(now):
    """Clicks of two users on three items, oldest first (the source allows 30 s of lateness).
    Every click is 5 to 25 minutes old, so that the windows that move each minute (10 m, 1 h) and
    each 5 minutes (users_1h, mean_dwell_1h) all hold them for the whole test."""
    clicks = [
        ("u1", "i3", now - 1500, 3.0),
        ("u1", "i1", now - 540, 1.5),
        ("u1", "i1", now - 480, 2.5),
        ("u2", "i2", now - 450, 10.0),
        ("u1", "i2", now - 420, 4.0),
    ]
    return [{"user_id": u, "item_id": i, "ts": ts, "dwell": dwell, "page": "home", "country": "fr"}
            for u, i, ts, dwell in clicks]


# What the store must compute from click_events (see examples/features/clicks.yaml).
EXPECTED_USERS = {"u1": [4, 3, 11.0], "u2": [1, 1, 10.0], "nobody": [0, 0, 0]}
EXPECTED_ITEMS = {"i1": [2, 1, 2.0], "i2": [2, 2, 7.0], "i3": [1, 1, 3.0], "i404": [0, 0, 0]}


class EnsembleFeaturesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="flywheel-e2e-ensemble-")
        repo = os.path.join(cls.tmp, "models")
        shutil.copytree(MODELS, repo)
        cls.ranker = onnx.load(os.path.join(repo, "ranker", "1", "model.onnx"))
        cls.server = FlywheelServer(FLYWHEEL, [
            "--model-repository", repo, "--features", FEATURES,
            "--data-dir", os.path.join(cls.tmp, "data")]).start()
        status, reply = call("POST", cls.server.http_url + "/v1/features/push",
                             {"source": "clicks", "events": click_events(int(time.time()))})
        assert status == 200, reply

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, f"flywheel serve exited with {code}"

    def infer(self, model, body):
        return call("POST", f"{self.server.http_url}/v2/models/{model}/infer", body)

    def assert_features(self, got, expected, what):
        for row, (key, want) in zip(got, expected):
            for value, wanted, name in zip(row, want, what):
                # users_1h is a HyperLogLog estimate: close, not exact.
                tolerance = 0.05 * wanted if name.endswith("users_1h") else 1e-5
                self.assertTrue(math.isclose(value, wanted, abs_tol=tolerance + 1e-6),
                                f"{name} of {key}: got {value}, want {wanted}")

    def test_ids_in_scores_out(self):
        items = ["i1", "i2", "i3", "i404"]
        status, reply = self.infer("rank_with_features", {
            "id": "rank-1", "inputs": [tensor("user_id", ["u1"]), tensor("item_ids", items)]})
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["model_name"], "rank_with_features")
        self.assertEqual(reply["id"], "rank-1")
        out = outputs_of(reply)
        self.assertEqual(out["scores"].shape, (4,))
        self.assertEqual(out["user_features"].shape, (1, 3))
        self.assertEqual(out["item_features"].shape, (4, 3))
        # The features assembled in process are the store's...
        self.assert_features(out["user_features"], [("u1", EXPECTED_USERS["u1"])], USER_FEATURES)
        self.assert_features(out["item_features"], [(i, EXPECTED_ITEMS[i]) for i in items],
                             ITEM_FEATURES)
        # ...the same values the HTTP lookup API returns...
        status, online = call("POST", self.server.http_url + "/v1/features/online", {
            "features": ITEM_FEATURES, "entities": [{"item_id": i} for i in items]})
        self.assertEqual(status, 200, online)
        for row, result in zip(out["item_features"], online["results"]):
            want = [0.0 if v is None else v for v in result["values"]]
            np.testing.assert_allclose(row, want, rtol=1e-6, atol=1e-6)
        # ...and the scores are the ranker's on them.
        want = reference(self.ranker, out["user_features"], out["item_features"])
        np.testing.assert_allclose(out["scores"], want, rtol=1e-5, atol=1e-6)
        self.assertEqual(len(set(np.round(out["scores"], 6))), 4, "scores should differ by item")

    def test_one_output_requested_and_other_users(self):
        inputs = [tensor("user_id", ["u2"]), tensor("item_ids", ["i2", "i1"])]
        status, full = self.infer("rank_with_features", {"inputs": inputs})
        self.assertEqual(status, 200, full)
        status, only = self.infer("rank_with_features",
                                  {"inputs": inputs, "outputs": [{"name": "scores"}]})
        self.assertEqual(status, 200, only)
        self.assertEqual([o["name"] for o in only["outputs"]], ["scores"])
        full = outputs_of(full)
        self.assert_features(full["user_features"], [("u2", EXPECTED_USERS["u2"])], USER_FEATURES)
        self.assert_features(full["item_features"], [(i, EXPECTED_ITEMS[i]) for i in ["i2", "i1"]],
                             ITEM_FEATURES)
        np.testing.assert_array_equal(outputs_of(only)["scores"], full["scores"])
        want = reference(self.ranker, full["user_features"], full["item_features"])
        np.testing.assert_allclose(full["scores"], want, rtol=1e-5, atol=1e-6)

    def test_lookup_model_alone_reports_presence(self):
        status, reply = self.infer("user_features",
                                   {"inputs": [tensor("user_id", ["u1", "nobody", "u2"])]})
        self.assertEqual(status, 200, reply)
        out = outputs_of(reply)
        self.assert_features(out["user_features"],
                             [(u, EXPECTED_USERS[u]) for u in ["u1", "nobody", "u2"]],
                             USER_FEATURES)
        self.assertEqual(out["user_features_present"].tolist(),
                         [[True] * 3, [False] * 3, [True] * 3])

    def test_metadata_config_and_statistics(self):
        status, meta = call("GET", self.server.http_url + "/v2/models/rank_with_features")
        self.assertEqual(status, 200, meta)
        self.assertEqual(meta["platform"], "ensemble")
        self.assertEqual(meta["inputs"], [
            {"name": "user_id", "datatype": "BYTES", "shape": [1]},
            {"name": "item_ids", "datatype": "BYTES", "shape": [-1]}])
        self.assertEqual([o["name"] for o in meta["outputs"]],
                         ["scores", "user_features", "item_features"])
        status, config = call("GET", self.server.http_url + "/v2/models/rank_with_features/config")
        self.assertEqual(status, 200, config)
        steps = config["ensemble_scheduling"]["step"]
        self.assertEqual([s["model_name"] for s in steps],
                         ["user_features", "item_features", "ranker"])

        before = self.stats("rank_with_features")
        ranker_before = self.stats("ranker")
        for _ in range(3):
            status, _ = self.infer("rank_with_features", {
                "inputs": [tensor("user_id", ["u1"]), tensor("item_ids", ["i1"])]})
            self.assertEqual(status, 200)
        self.assertEqual(self.stats("rank_with_features")["success"]["count"] -
                         before["success"]["count"], 3)
        self.assertEqual(self.stats("ranker")["success"]["count"] -
                         ranker_before["success"]["count"], 3)

    def stats(self, model):
        status, reply = call("GET", f"{self.server.http_url}/v2/models/{model}/stats")
        self.assertEqual(status, 200, reply)
        return reply["model_stats"][0]["inference_stats"]

    def test_bad_requests(self):
        status, reply = self.infer("rank_with_features",
                                   {"inputs": [tensor("user_id", ["u1"])]})
        self.assertEqual(status, 400, reply)
        self.assertIn("input 'item_ids'", reply["error"])
        # Two users: the ensemble scores one user's candidates per call.
        status, reply = self.infer("rank_with_features", {
            "inputs": [tensor("user_id", ["u1", "u2"]), tensor("item_ids", ["i1"])]})
        self.assertEqual(status, 400, reply)
        self.assertIn("model 'rank_with_features' input 'user_id'", reply["error"])
        status, reply = self.infer("rank_with_features", {
            "inputs": [tensor("user_id", [1], "INT64"), tensor("item_ids", ["i1"])]})
        self.assertEqual(status, 400, reply)


class WithoutFeatureStoreTest(unittest.TestCase):
    def test_feature_models_say_how_to_get_a_store(self):
        tmp = tempfile.mkdtemp(prefix="flywheel-e2e-ensemble-nostore-")
        try:
            repo = os.path.join(tmp, "models")
            shutil.copytree(MODELS, repo)
            server = FlywheelServer(FLYWHEEL, ["--model-repository", repo], wait_ready=False)
            server.start()
            try:
                status, index = call("POST", server.http_url + "/v2/repository/index", {})
                self.assertEqual(status, 200, index)
                state = {m["name"]: m for m in index}
                self.assertEqual(state["ranker"]["state"], "READY")
                for name in ("user_features", "item_features"):
                    self.assertEqual(state[name]["state"], "UNAVAILABLE")
                    self.assertIn("start flywheel serve with --features DIR",
                                  state[name]["reason"])
                self.assertEqual(state["rank_with_features"]["state"], "UNAVAILABLE")
                self.assertIn("user_features", state["rank_with_features"]["reason"])
                status, reply = call(
                    "POST", server.http_url + "/v2/models/rank_with_features/infer",
                    {"inputs": [tensor("user_id", ["u1"]), tensor("item_ids", ["i1"])]})
                self.assertEqual(status, 503, reply)
                self.assertIn("rank_with_features", reply["error"])
            finally:
                self.assertEqual(server.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    FLYWHEEL = os.path.abspath(sys.argv.pop(1))
    unittest.main()
