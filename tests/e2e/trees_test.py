"""End to end: the example XGBoost model (examples/models/fraud_trees, Triton FIL config) served
by `flywheel serve` returns XGBoost's own probabilities over HTTP (JSON and binary) and gRPC.

    /usr/bin/python3 tests/e2e/trees_test.py PATH/TO/flywheel PROTO_DIR
"""
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.request

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_grpc_stubs import load_stubs  # noqa: E402
from server_util import FlywheelServer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "serving")
BINARY = PROTO_DIR = None


def post(url, body, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), dict(r.headers)


class TreesServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.x = np.load(os.path.join(FIXTURES, "fraud_trees_x.npy"))
        cls.p1 = np.load(os.path.join(FIXTURES, "fraud_trees_p1.npy"))
        repo = tempfile.mkdtemp(prefix="flywheel-trees-repo-")
        shutil.copytree(os.path.join(ROOT, "examples", "models", "fraud_trees"),
                        os.path.join(repo, "fraud_trees"))
        cls.repo = repo
        cls.server = FlywheelServer(BINARY, ["--model-repository", repo]).start()
        cls.stubs = load_stubs(PROTO_DIR)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.repo, ignore_errors=True)

    def check(self, probs):
        self.assertEqual(probs.shape, (len(self.x), 2))
        np.testing.assert_allclose(probs[:, 1], self.p1, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(probs[:, 0], 1 - self.p1, rtol=1e-6, atol=1e-6)

    def test_http_json(self):
        # JSON has no NaN: missing values are sent in the binary form below; here rows without.
        rows = np.nan_to_num(self.x, nan=0.0)
        body = json.dumps({"inputs": [{"name": "input__0", "shape": list(rows.shape),
                                        "datatype": "FP32", "data": rows.ravel().tolist()}]})
        out, _ = post(self.server.http_url + "/v2/models/fraud_trees/infer", body.encode())
        doc = json.loads(out)
        self.assertEqual(doc["model_name"], "fraud_trees")
        got = np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(doc["outputs"][0]["shape"])
        self.assertEqual(got.shape, (len(rows), 2))
        # Rows without missing values must match XGBoost exactly as well.
        full = ~np.isnan(self.x).any(axis=1)
        np.testing.assert_allclose(got[full, 1], self.p1[full], rtol=1e-6, atol=1e-7)

    def test_http_binary_with_missing_values(self):
        raw = self.x.astype(np.float32).tobytes()
        header = json.dumps({"inputs": [{"name": "input__0", "shape": list(self.x.shape),
                                          "datatype": "FP32",
                                          "parameters": {"binary_data_size": len(raw)}}],
                             "outputs": [{"name": "output__0",
                                          "parameters": {"binary_data": True}}]}).encode()
        out, headers = post(self.server.http_url + "/v2/models/fraud_trees/infer", header + raw,
                            {"Inference-Header-Content-Length": str(len(header)),
                             "Content-Type": "application/octet-stream"})
        n = int(headers["Inference-Header-Content-Length"])
        doc = json.loads(out[:n])
        self.assertEqual(doc["outputs"][0]["parameters"]["binary_data_size"], len(out) - n)
        self.check(np.frombuffer(out[n:], dtype=np.float32).reshape(doc["outputs"][0]["shape"]))

    def test_grpc(self):
        pb = self.stubs["grpc_service_pb2"]
        stub = self.stubs["grpc_service_pb2_grpc"].GRPCInferenceServiceStub(
            grpc.insecure_channel(self.server.grpc_target))
        req = pb.ModelInferRequest(model_name="fraud_trees")
        t = req.inputs.add()
        t.name, t.datatype = "input__0", "FP32"
        t.shape.extend(self.x.shape)
        req.raw_input_contents.append(self.x.astype(np.float32).tobytes())
        resp = stub.ModelInfer(req, timeout=30)
        self.assertEqual(resp.outputs[0].name, "output__0")
        shape = tuple(resp.outputs[0].shape)
        self.check(np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(shape))
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="fraud_trees"), timeout=30)
        self.assertEqual(meta.platform, "fil")
        self.assertEqual(list(meta.inputs[0].shape), [-1, 16])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: trees_test.py PATH/TO/flywheel PROTO_DIR")
    BINARY, PROTO_DIR = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=2)
