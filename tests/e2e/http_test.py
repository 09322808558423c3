#!/usr/bin/python3
"""End-to-end test of flywheel's HTTP front end (KServe v2 REST with Triton's binary tensor,
model repository, statistics and model configuration extensions, and the metrics port) against
the real `flywheel serve` binary on free loopback ports, with Debian's python3-requests.

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/http_test.py PATH/TO/flywheel [unittest args]

The model repository is a private copy of examples/models/simple plus models written here:
`simple2` (a copy of simple that the load/unload tests change), `strings` (BYTES identity),
`identity` (one identity per numeric type), `floats` (FP32 and FP64 identities) and `half`
(FP16 <-> FP32 casts).
"""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import unittest
import zlib

import numpy as np
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from e2e_models import (length_prefixed, onnx_type, parse_length_prefixed,  # noqa: E402
                        simple_repository, write_identity, write_model)
from server_util import FlywheelServer  # noqa: E402

FLYWHEEL = None
ADMIN_TOKEN = "s3cret-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MAX_REQUEST_BYTES = 4 << 20

# identity model: input name -> (KServe datatype, numpy dtype, config type)
IDENTITY_TYPES = {
    "IN_BOOL": ("BOOL", np.bool_, "TYPE_BOOL"),
    "IN_INT8": ("INT8", np.int8, "TYPE_INT8"),
    "IN_INT16": ("INT16", np.int16, "TYPE_INT16"),
    "IN_INT32": ("INT32", np.int32, "TYPE_INT32"),
    "IN_INT64": ("INT64", np.int64, "TYPE_INT64"),
    "IN_UINT8": ("UINT8", np.uint8, "TYPE_UINT8"),
    "IN_UINT16": ("UINT16", np.uint16, "TYPE_UINT16"),
    "IN_UINT32": ("UINT32", np.uint32, "TYPE_UINT32"),
    "IN_UINT64": ("UINT64", np.uint64, "TYPE_UINT64"),
    "IN_FP32": ("FP32", np.float32, "TYPE_FP32"),
    "IN_FP64": ("FP64", np.float64, "TYPE_FP64"),
}
NP_OF = {"BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
         "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
         "UINT64": np.uint64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


# --- the model repository ---------------------------------------------------------------------
def make_repository():
    from onnx import TensorProto, helper
    repo = simple_repository("flywheel-http-repo-")
    write_identity(os.path.join(repo, "strings"), "strings",
                   [("IN_STR", TensorProto.STRING, "TYPE_STRING")])
    write_identity(os.path.join(repo, "identity"), "identity",
                   [(n, onnx_type(t[0]), t[2]) for n, t in IDENTITY_TYPES.items()])
    write_identity(os.path.join(repo, "floats"), "floats",
                   [("IN_FP32", TensorProto.FLOAT, "TYPE_FP32"),
                    ("IN_FP64", TensorProto.DOUBLE, "TYPE_FP64")])
    write_model(os.path.join(repo, "half"), "half",
                [helper.make_node("Cast", ["IN_FP16"], ["OUT_FP32"], to=TensorProto.FLOAT),
                 helper.make_node("Cast", ["IN_FP32"], ["OUT_FP16"], to=TensorProto.FLOAT16)],
                [("IN_FP16", TensorProto.FLOAT16, "TYPE_FP16"),
                 ("IN_FP32", TensorProto.FLOAT, "TYPE_FP32")],
                [("OUT_FP32", TensorProto.FLOAT, "TYPE_FP32"),
                 ("OUT_FP16", TensorProto.FLOAT16, "TYPE_FP16")])
    return repo


# --- request helpers --------------------------------------------------------------------------
def json_input(name, arr, datatype):
    data = arr.flatten().tolist()
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def binary_body(inputs, outputs=None, parameters=None):
    """inputs: list of (name, datatype, shape, raw bytes). Returns (body, json length)."""
    req = {"inputs": [{"name": n, "datatype": d, "shape": list(s),
                       "parameters": {"binary_data_size": len(raw)}} for n, d, s, raw in inputs]}
    if outputs is not None:
        req["outputs"] = outputs
    if parameters is not None:
        req["parameters"] = parameters
    head = json.dumps(req).encode()
    return head + b"".join(raw for _, _, _, raw in inputs), len(head)


def decode_response(resp):
    """(json dict, {output name: numpy array or list of bytes}) from a JSON or binary reply."""
    body = resp.content
    n = int(resp.headers.get("Inference-Header-Content-Length", len(body)))
    doc = json.loads(body[:n])
    pos, arrays = n, {}
    for out in doc["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            if out["datatype"] == "BYTES":
                arrays[out["name"]] = [s.encode() for s in out["data"]]
            else:
                arrays[out["name"]] = np.array(out["data"], dtype=NP_OF[out["datatype"]]).reshape(
                    out["shape"])
            continue
        raw = body[pos:pos + size]
        pos += size
        if out["datatype"] == "BYTES":
            arrays[out["name"]] = parse_length_prefixed(raw)
        else:
            dt = np.dtype(NP_OF[out["datatype"]]).newbyteorder("<")
            arrays[out["name"]] = np.frombuffer(raw, dtype=dt).reshape(out["shape"])
    assert pos == len(body), f"{len(body) - pos} unread bytes after the binary outputs"
    return doc, arrays


def simple_json(a, b, **extra):
    req = {"inputs": [json_input("INPUT0", a, "INT32"), json_input("INPUT1", b, "INT32")]}
    req.update(extra)
    return req


class HttpTestBase(unittest.TestCase):
    server = None
    repo = None

    @classmethod
    def setUpClass(cls):
        cls.repo = make_repository()
        cls.server = FlywheelServer(FLYWHEEL, ["--model-repository", cls.repo,
                                               "--model-control-mode", "explicit",
                                               "--load-model", "*",
                                               "--admin-token", ADMIN_TOKEN,
                                               "--max-request-bytes", str(MAX_REQUEST_BYTES)])
        cls.server.start()
        cls.url = cls.server.http_url
        cls.http = requests.Session()

    @classmethod
    def tearDownClass(cls):
        cls.http.close()
        code = cls.server.stop()
        output = cls.server.output()
        os.unlink(cls.server.log.name)
        shutil.rmtree(cls.repo, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"flywheel serve exited with {code}:\n{output}")

    def get(self, path, **kw):
        return self.http.get(self.url + path, timeout=30, **kw)

    def post(self, path, **kw):
        return self.http.post(self.url + path, timeout=60, **kw)

    def infer(self, model, body, **kw):
        return self.post(f"/v2/models/{model}/infer", json=body, **kw)

    def assertError(self, resp, status, *fragments):
        self.assertEqual(resp.status_code, status, resp.text)
        self.assertTrue(resp.headers["Content-Type"].startswith("application/json"))
        message = resp.json()["error"]
        for frag in fragments:
            self.assertIn(frag, message)
        return message

    def assertStillServing(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        resp = self.infer("simple", simple_json(a, a))
        self.assertEqual(resp.status_code, 200, resp.text)
        _, out = decode_response(resp)
        np.testing.assert_array_equal(out["OUTPUT0"], a + a)


class ServerAndModelInfo(HttpTestBase):
    def test_health(self):
        self.assertEqual(self.get("/v2/health/live").status_code, 200)
        self.assertEqual(self.get("/v2/health/ready").status_code, 200)

    def test_server_metadata(self):
        r = self.get("/v2")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        md = r.json()
        self.assertTrue(md["name"])
        self.assertTrue(md["version"])
        for ext in ("binary_tensor_data", "model_repository", "statistics",
                    "model_configuration"):
            self.assertIn(ext, md["extensions"])

    def test_model_metadata_and_ready(self):
        for path in ("/v2/models/simple", "/v2/models/simple/versions/1"):
            md = self.get(path).json()
            self.assertEqual(md["name"], "simple")
            self.assertEqual(md["versions"], ["1"])
            self.assertEqual(md["platform"], "onnxruntime_onnx")
            self.assertEqual([i["name"] for i in md["inputs"]], ["INPUT0", "INPUT1"])
            self.assertEqual(md["inputs"][0]["datatype"], "INT32")
            self.assertEqual(md["inputs"][0]["shape"], [-1, 16])
            self.assertEqual([o["name"] for o in md["outputs"]], ["OUTPUT0", "OUTPUT1"])
        self.assertEqual(self.get("/v2/models/simple/ready").status_code, 200)
        self.assertEqual(self.get("/v2/models/simple/versions/1/ready").status_code, 200)
        self.assertError(self.get("/v2/models/no_such_model"), 404, "no_such_model")
        self.assertError(self.get("/v2/models/no_such_model/ready"), 404, "no_such_model")
        self.assertEqual(self.get("/v2/models/simple/versions/7").status_code, 404)
        self.assertNotEqual(self.get("/v2/models/simple/versions/7/ready").status_code, 200)

    def test_model_config(self):
        cfg = self.get("/v2/models/simple/config").json()
        self.assertEqual(cfg["name"], "simple")
        self.assertEqual(cfg["max_batch_size"], 8)
        self.assertEqual(cfg["input"][0]["name"], "INPUT0")
        self.assertEqual(cfg["input"][0]["data_type"], "TYPE_INT32")
        self.assertEqual(cfg["input"][0]["dims"], [16])
        self.assertEqual(self.get("/v2/models/simple/versions/1/config").json()["name"], "simple")
        self.assertError(self.get("/v2/models/no_such_model/config"), 404, "no_such_model")

    def test_routing_errors(self):
        self.assertError(self.get("/v2/no/such/path"), 404)
        self.assertError(self.get("/"), 404)
        r = self.get("/v2/models/simple/infer")
        self.assertError(r, 405, "POST")
        self.assertEqual(r.headers["Allow"], "POST")
        r = self.post("/v2/health/live")
        self.assertEqual(r.status_code, 405)
        self.assertEqual(r.headers["Allow"], "GET")
        # requests would re-encode a bad escape; send the target as is.
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        conn.request("GET", "/v2/models/bad%zzname")
        r = conn.getresponse()
        self.assertEqual(r.status, 400)
        self.assertIn("percent-escape", json.loads(r.read())["error"])
        conn.close()

    def test_keep_alive_reuses_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        body = json.dumps(simple_json(np.ones((1, 16), np.int32), np.ones((1, 16), np.int32)))
        sock = None
        for i in range(5):
            conn.request("POST", "/v2/models/simple/infer", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            self.assertFalse(r.will_close)
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock, "the connection was not kept alive")
        conn.close()

    def test_http10_and_pipelining(self):
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=30) as s:
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /v2/health/ready HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data)
        self.assertIn(b"HTTP/1.0 200 OK", data)
        self.assertLess(data.index(b"HTTP/1.1 200 OK"), data.index(b"\"extensions\""))


class Inference(HttpTestBase):
    def test_json(self):
        a = np.arange(32, dtype=np.int32).reshape(2, 16)
        b = np.full((2, 16), 3, dtype=np.int32)
        r = self.infer("simple", simple_json(a, b, id="req-1"))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        doc, out = decode_response(r)
        self.assertEqual(doc["model_name"], "simple")
        self.assertEqual(doc["model_version"], "1")
        self.assertEqual(doc["id"], "req-1")
        np.testing.assert_array_equal(out["OUTPUT0"], a + b)
        np.testing.assert_array_equal(out["OUTPUT1"], a - b)
        self.assertEqual(doc["outputs"][0]["shape"], [2, 16])

    def test_nested_json_data_and_named_version(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        req = simple_json(a, a)
        req["inputs"][0]["data"] = a.tolist()  # nested as the shape
        r = self.infer("simple/versions/1", req)
        self.assertEqual(r.status_code, 200, r.text)
        np.testing.assert_array_equal(decode_response(r)[1]["OUTPUT0"], a + a)

    def test_output_subset(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        r = self.infer("simple", simple_json(a, a, outputs=[{"name": "OUTPUT1"}]))
        doc, out = decode_response(r)
        self.assertEqual([o["name"] for o in doc["outputs"]], ["OUTPUT1"])
        np.testing.assert_array_equal(out["OUTPUT1"], a - a)

    def test_binary_inputs_and_outputs(self):
        a = np.arange(48, dtype=np.int32).reshape(3, 16)
        b = np.full((3, 16), -7, dtype=np.int32)
        body, n = binary_body([("INPUT0", "INT32", a.shape, a.astype("<i4").tobytes()),
                               ("INPUT1", "INT32", b.shape, b.astype("<i4").tobytes())],
                              outputs=[{"name": "OUTPUT0", "parameters": {"binary_data": True}},
                                       {"name": "OUTPUT1", "parameters": {"binary_data": False}}])
        r = self.post("/v2/models/simple/infer", data=body,
                      headers={"Inference-Header-Content-Length": str(n),
                               "Content-Type": "application/octet-stream"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        doc, out = decode_response(r)
        out0 = next(o for o in doc["outputs"] if o["name"] == "OUTPUT0")
        self.assertEqual(out0["parameters"]["binary_data_size"], 3 * 16 * 4)
        self.assertNotIn("data", out0)
        np.testing.assert_array_equal(out["OUTPUT0"], a + b)
        np.testing.assert_array_equal(out["OUTPUT1"], a - b)

    def test_binary_data_output_parameter(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        r = self.infer("simple", simple_json(a, a, parameters={"binary_data_output": True}))
        self.assertEqual(r.status_code, 200, r.text)
        doc, out = decode_response(r)
        for o in doc["outputs"]:
            self.assertIn("binary_data_size", o["parameters"])
        np.testing.assert_array_equal(out["OUTPUT1"], a - a)

    def test_mixed_json_and_binary_inputs(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        head = {"inputs": [json_input("INPUT0", a, "INT32"),
                           {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16],
                            "parameters": {"binary_data_size": 64}}]}
        h = json.dumps(head).encode()
        r = self.post("/v2/models/simple/infer", data=h + (a * 10).astype("<i4").tobytes(),
                      headers={"Inference-Header-Content-Length": str(len(h))})
        self.assertEqual(r.status_code, 200, r.text)
        np.testing.assert_array_equal(decode_response(r)[1]["OUTPUT0"], a * 11)

    def test_every_datatype_json_and_binary(self):
        rng = np.random.default_rng(7)
        arrays = {}
        for name, (dt, npdt, _) in IDENTITY_TYPES.items():
            if dt == "BOOL":
                arrays[name] = rng.integers(0, 2, 5).astype(np.bool_)
            elif dt.startswith("FP"):
                arrays[name] = (rng.standard_normal(5) * 1e3).astype(npdt)
            else:
                info = np.iinfo(npdt)
                arrays[name] = np.array([info.min, info.max, 0, 1, info.max // 3], dtype=npdt)
        # JSON in, JSON out.
        req = {"inputs": [json_input(n, arrays[n], IDENTITY_TYPES[n][0]) for n in arrays]}
        r = self.infer("identity", req)
        self.assertEqual(r.status_code, 200, r.text)
        _, out = decode_response(r)
        for n, arr in arrays.items():
            np.testing.assert_array_equal(out["OUT" + n[2:]], arr, err_msg=n)
        # Binary in, binary out.
        body, hl = binary_body(
            [(n, IDENTITY_TYPES[n][0], arr.shape, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
             for n, arr in arrays.items()], parameters={"binary_data_output": True})
        r = self.post("/v2/models/identity/infer", data=body,
                      headers={"Inference-Header-Content-Length": str(hl)})
        self.assertEqual(r.status_code, 200, r.text)
        doc, out = decode_response(r)
        self.assertTrue(all("binary_data_size" in o["parameters"] for o in doc["outputs"]))
        for n, arr in arrays.items():
            np.testing.assert_array_equal(out["OUT" + n[2:]], arr, err_msg=n)

    def test_floats_round_trip_exactly_in_json(self):
        vals = np.array([0.1, 1 / 3, 1e-45, 3.4028235e38, -0.0, 16777217, 1.17549435e-38],
                        dtype=np.float32)
        d = np.array([0.1, 2.2250738585072014e-308, 1.7976931348623157e308, 5e-324, 1 / 3, -0.0,
                      12345.678901234567], np.float64)
        r = self.infer("floats", {"inputs": [json_input("IN_FP32", vals, "FP32"),
                                             json_input("IN_FP64", d, "FP64")]})
        self.assertEqual(r.status_code, 200, r.text)
        out = {o["name"]: o["data"] for o in r.json()["outputs"]}
        np.testing.assert_array_equal(np.array(out["OUT_FP32"], dtype=np.float32), vals)
        np.testing.assert_array_equal(np.array(out["OUT_FP64"], dtype=np.float64), d)

    def test_bytes_json_and_binary(self):
        strings = [b"hello", b"", "caf\u00e9".encode(), b"x" * 1000]
        r = self.infer("strings", {"inputs": [{"name": "IN_STR", "datatype": "BYTES",
                                               "shape": [4],
                                               "data": [s.decode() for s in strings]}]})
        self.assertEqual(r.status_code, 200, r.text)
        doc, out = decode_response(r)
        self.assertEqual(doc["outputs"][0]["datatype"], "BYTES")
        self.assertEqual(out["OUT_STR"], strings)
        raw = [b"\x00\xff\xfe", b"ok", b""]
        body, hl = binary_body([("IN_STR", "BYTES", [3], length_prefixed(raw))])
        r = self.post("/v2/models/strings/infer", data=body,
                      headers={"Inference-Header-Content-Length": str(hl)})
        self.assertEqual(r.status_code, 200, r.text)
        doc, out = decode_response(r)
        # Not valid UTF-8: it cannot be a JSON string, so it comes back binary.
        self.assertIn("binary_data_size", doc["outputs"][0]["parameters"])
        self.assertEqual(out["OUT_STR"], raw)

    def test_fp16_is_binary_both_ways(self):
        h = np.array([1.5, -2.25, 65504, 6e-8], dtype=np.float16)
        f = np.array([0.5, 1e4, -3.0, 1e-3], dtype=np.float32)
        body, hl = binary_body([("IN_FP16", "FP16", [4], h.astype("<f2").tobytes()),
                                ("IN_FP32", "FP32", [4], f.astype("<f4").tobytes())])
        r = self.post("/v2/models/half/infer", data=body,
                      headers={"Inference-Header-Content-Length": str(hl)})
        self.assertEqual(r.status_code, 200, r.text)
        doc, out = decode_response(r)
        # FP32 was not asked binary: JSON. FP16 has no JSON form: binary regardless.
        kinds = {o["name"]: "data" in o for o in doc["outputs"]}
        self.assertEqual(kinds, {"OUT_FP32": True, "OUT_FP16": False})
        np.testing.assert_array_equal(out["OUT_FP32"], h.astype(np.float32))
        np.testing.assert_array_equal(out["OUT_FP16"], f.astype(np.float16))
        # FP16 in JSON is refused with a clear message.
        r = self.infer("half", {"inputs": [json_input("IN_FP16", h, "FP16"),
                                           json_input("IN_FP32", f, "FP32")]})
        self.assertError(r, 400, "FP16", "binary")

    def test_large_binary_request(self):
        a = np.arange(8 * 16, dtype=np.int32).reshape(8, 16)
        body, hl = binary_body([("INPUT0", "INT32", a.shape, a.tobytes()),
                                ("INPUT1", "INT32", a.shape, a.tobytes())],
                               parameters={"binary_data_output": True})
        for _ in range(20):
            r = self.post("/v2/models/simple/infer", data=body,
                          headers={"Inference-Header-Content-Length": str(hl)})
            self.assertEqual(r.status_code, 200, r.text)
            np.testing.assert_array_equal(decode_response(r)[1]["OUTPUT0"], a * 2)


class BadInputs(HttpTestBase):
    def setUp(self):
        self.a = np.arange(16, dtype=np.int32).reshape(1, 16)

    def tearDown(self):
        self.assertStillServing()

    def raw_post(self, body, header_length=None, model="simple"):
        headers = {"Content-Type": "application/json"}
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
        return self.post(f"/v2/models/{model}/infer", data=body, headers=headers)

    def test_malformed_json(self):
        msg = self.assertError(self.raw_post(b'{"inputs": [{"name": "INPUT0",'), 400,
                               "malformed JSON at offset")
        self.assertIn("offset 30", msg)
        self.assertError(self.raw_post(b"[1, 2]"), 400, "JSON object")
        self.assertError(self.raw_post(b""), 400)

    def test_missing_fields(self):
        self.assertError(self.raw_post(b"{}"), 400, "'inputs'")
        self.assertError(self.raw_post(b'{"inputs": [{"name": "INPUT0", "datatype": "INT32"}]}'),
                         400, "INPUT0", "shape")
        self.assertError(self.raw_post(b'{"inputs": [{"name": "INPUT0", "shape": [1, 16]}]}'),
                         400, "INPUT0", "datatype")

    def test_wrong_datatype(self):
        req = simple_json(self.a, self.a)
        req["inputs"][0]["datatype"] = "FP32"
        self.assertError(self.infer("simple", req), 400, "INPUT0")

    def test_unknown_datatype(self):
        req = simple_json(self.a, self.a)
        req["inputs"][0]["datatype"] = "FLOAT"
        self.assertError(self.infer("simple", req), 400, "INPUT0", "unknown datatype 'FLOAT'")

    def test_element_type_mismatch(self):
        req = simple_json(self.a, self.a)
        req["inputs"][0]["data"][3] = 1.5
        self.assertError(self.infer("simple", req), 400, "INPUT0", "element 3", "1.5")
        req["inputs"][0]["data"][3] = "x"
        self.assertError(self.infer("simple", req), 400, "INPUT0", "element 3")
        req["inputs"][0]["data"][3] = 2 ** 40
        self.assertError(self.infer("simple", req), 400, "INPUT0", "not a valid INT32")

    def test_wrong_shape(self):
        req = simple_json(self.a.reshape(2, 8), self.a.reshape(2, 8))
        self.assertError(self.infer("simple", req), 400, "INPUT0")
        req = simple_json(self.a, self.a)
        req["inputs"][0]["shape"] = [1, -16]
        self.assertError(self.infer("simple", req), 400, "INPUT0", "non-negative")

    def test_batch_too_large(self):
        big = np.zeros((9, 16), dtype=np.int32)
        self.assertError(self.infer("simple", simple_json(big, big)), 400)

    def test_element_count_mismatch(self):
        req = simple_json(self.a, self.a)
        req["inputs"][1]["data"] = req["inputs"][1]["data"][:15]
        self.assertError(self.infer("simple", req), 400, "INPUT1", "15 elements", "needs 16")

    def test_missing_and_unknown_inputs_and_outputs(self):
        req = simple_json(self.a, self.a)
        del req["inputs"][1]
        self.assertError(self.infer("simple", req), 400, "INPUT1")
        req = simple_json(self.a, self.a)
        req["inputs"].append(json_input("EXTRA", self.a, "INT32"))
        self.assertError(self.infer("simple", req), 400, "EXTRA")
        req = simple_json(self.a, self.a, outputs=[{"name": "NOPE"}])
        self.assertError(self.infer("simple", req), 400, "NOPE")

    def test_unknown_model_and_version(self):
        self.assertError(self.infer("no_such_model", simple_json(self.a, self.a)), 404,
                         "no_such_model")
        self.assertError(self.infer("simple/versions/9", simple_json(self.a, self.a)), 404)

    def test_oversized_body(self):
        r = self.post("/v2/models/simple/infer", data=b" " * (MAX_REQUEST_BYTES + 1),
                      headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "exceeds the limit", str(MAX_REQUEST_BYTES))

    def test_truncated_binary_section(self):
        body, hl = binary_body([("INPUT0", "INT32", [1, 16], self.a.tobytes()),
                                ("INPUT1", "INT32", [1, 16], self.a.tobytes())])
        self.assertError(self.raw_post(body[:-10], hl), 400, "input 'INPUT1'", "truncated")
        self.assertError(self.raw_post(body + b"xx", hl), 400, "2 bytes of binary data")

    def test_binary_size_does_not_match_shape(self):
        body, hl = binary_body([("INPUT0", "INT32", [1, 16], self.a.tobytes()[:60]),
                                ("INPUT1", "INT32", [1, 16], self.a.tobytes())])
        self.assertError(self.raw_post(body, hl), 400, "INPUT0", "binary_data_size is 60")

    def test_bad_header_length(self):
        body, hl = binary_body([("INPUT0", "INT32", [1, 16], self.a.tobytes()),
                                ("INPUT1", "INT32", [1, 16], self.a.tobytes())])
        self.assertError(self.raw_post(body, len(body) + 1), 400,
                         "Inference-Header-Content-Length")
        self.assertError(self.raw_post(body, "abc"), 400, "Inference-Header-Content-Length")
        self.assertError(self.raw_post(body, -5), 400, "Inference-Header-Content-Length")
        self.assertError(self.raw_post(body, hl - 3), 400, "malformed JSON")
        # Binary inputs without the header at all.
        self.assertError(self.raw_post(body[:hl]), 400, "Inference-Header-Content-Length")

    def test_bad_parameters(self):
        req = simple_json(self.a, self.a, parameters={"priority": -1})
        self.assertError(self.infer("simple", req), 400, "priority")
        req = simple_json(self.a, self.a, parameters={"timeout": "soon"})
        self.assertError(self.infer("simple", req), 400, "timeout")
        req = simple_json(self.a, self.a,
                          outputs=[{"name": "OUTPUT0", "parameters": {"classification": 2}}])
        self.assertError(self.infer("simple", req), 501, "classification")

    def test_compressed_bodies(self):
        body = json.dumps(simple_json(self.a, self.a)).encode()
        for coding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
            r = self.post("/v2/models/simple/infer", data=data,
                          headers={"Content-Encoding": coding})
            self.assertEqual(r.status_code, 200, r.text)
            np.testing.assert_array_equal(decode_response(r)[1]["OUTPUT0"], self.a * 2)
        self.assertError(self.post("/v2/models/simple/infer", data=b"\x1f\x8b",
                                   headers={"Content-Encoding": "gzip"}), 400, "corrupt")
        self.assertError(self.post("/v2/models/simple/infer", data=body,
                                   headers={"Content-Encoding": "br"}), 415, "'br'")
        bomb = gzip.compress(b" " * (MAX_REQUEST_BYTES + 1))
        self.assertError(self.post("/v2/models/simple/infer", data=bomb,
                                   headers={"Content-Encoding": "gzip"}), 413, "decompressed")

    def test_malformed_http(self):
        with socket.create_connection(("127.0.0.1", self.server.http_port), timeout=30) as s:
            s.sendall(b"BROKEN\r\n\r\n")
            self.assertIn(b" 400 ", s.recv(4096))


class Statistics(HttpTestBase):
    def test_statistics(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        before = self.get("/v2/models/simple/stats").json()["model_stats"][0]
        for _ in range(3):
            self.assertEqual(self.infer("simple", simple_json(a, a)).status_code, 200)
        self.infer("simple", {"inputs": []})
        stats = self.get("/v2/models/simple/stats").json()["model_stats"]
        self.assertEqual(len(stats), 1)
        s = stats[0]
        self.assertEqual(s["name"], "simple")
        self.assertEqual(s["version"], "1")
        self.assertEqual(s["inference_count"] - before["inference_count"], 3)
        inf = s["inference_stats"]
        self.assertEqual(inf["success"]["count"] - before["inference_stats"]["success"]["count"],
                         3)
        for k in ("success", "fail", "queue", "compute_input", "compute_infer",
                  "compute_output"):
            self.assertIn("count", inf[k])
            self.assertIn("ns", inf[k])
        self.assertGreater(inf["compute_infer"]["ns"], 0)
        self.assertGreater(s["execution_count"], 0)
        self.assertGreater(s["last_inference"], 0)
        self.assertTrue(s["batch_stats"])
        self.assertIn("batch_size", s["batch_stats"][0])
        self.assertIn("compute_infer", s["batch_stats"][0])
        self.assertEqual(self.get("/v2/models/simple/versions/1/stats").status_code, 200)
        names = {m["name"] for m in self.get("/v2/models/stats").json()["model_stats"]}
        self.assertTrue({"simple", "identity", "strings"} <= names)
        self.assertError(self.get("/v2/models/no_such_model/stats"), 404)

    def test_metrics_port(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        for _ in range(2):
            self.assertEqual(self.infer("simple", simple_json(a, a)).status_code, 200)
        r = requests.get(self.server.metrics_url, timeout=30)
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        lines = [l for l in r.text.splitlines()
                 if l.startswith("nv_inference_request_success{")
                 and 'model="simple"' in l and 'version="1"' in l]
        self.assertEqual(len(lines), 1, r.text[:2000])
        self.assertGreaterEqual(float(lines[0].rsplit(" ", 1)[1]), 2)
        self.assertIn("# TYPE nv_inference_request_success counter", r.text)
        self.assertEqual(requests.get(self.server.metrics_url.replace("/metrics", "/x"),
                                      timeout=30).status_code, 404)


class Repository(HttpTestBase):
    def test_index(self):
        r = self.post("/v2/repository/index", headers=ADMIN)
        self.assertEqual(r.status_code, 200, r.text)
        index = {m["name"]: m for m in r.json()}
        self.assertEqual(index["simple"]["state"], "READY")
        self.assertEqual(index["simple"]["version"], "1")
        r = self.post("/v2/repository/index", headers=ADMIN, json={"ready": True})
        self.assertTrue(all(m["state"] == "READY" for m in r.json()))

    def test_admin_token(self):
        r = self.post("/v2/repository/index")
        self.assertError(r, 401, "Bearer")
        self.assertEqual(r.headers["WWW-Authenticate"], "Bearer")
        self.assertError(self.post("/v2/repository/index",
                                   headers={"Authorization": "Bearer wrong"}), 403)
        self.assertError(self.post("/v2/repository/models/simple2/unload",
                                   headers={"Authorization": "Bearer wrong"}), 403)
        self.assertEqual(self.get("/v2/models/simple2/ready").status_code, 200)

    def test_unload_and_load(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        r = self.post("/v2/repository/models/simple2/unload", headers=ADMIN)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertNotEqual(self.get("/v2/models/simple2/ready").status_code, 200)
        self.assertNotEqual(self.infer("simple2", simple_json(a, a)).status_code, 200)
        r = self.post("/v2/repository/models/simple2/load", headers=ADMIN)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.get("/v2/models/simple2/ready").status_code, 200)
        self.assertEqual(self.infer("simple2", simple_json(a, a)).status_code, 200)

    def test_load_with_config_override(self):
        config = self.get("/v2/models/simple2/config").json()
        config["max_batch_size"] = 4
        r = self.post("/v2/repository/models/simple2/load", headers=ADMIN,
                      json={"parameters": {"config": json.dumps(config)}})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.get("/v2/models/simple2/config").json()["max_batch_size"], 4)
        big = np.zeros((6, 16), dtype=np.int32)
        self.assertEqual(self.infer("simple2", simple_json(big, big)).status_code, 400)

    def test_invalid_config_via_load(self):
        bad = {"parameters": {"config": json.dumps({"max_batch_size": "many"})}}
        self.assertError(self.post("/v2/repository/models/simple2/load", headers=ADMIN, json=bad),
                         400, "max_batch_size")
        self.assertError(self.post("/v2/repository/models/simple2/load", headers=ADMIN,
                                   json={"parameters": {"config": "{not json"}}), 400)
        self.assertError(self.post("/v2/repository/models/simple2/load", headers=ADMIN,
                                   json={"parameters": {"config": 5}}), 400, "config")
        self.assertError(self.post("/v2/repository/models/simple2/load", headers=ADMIN,
                                   data=b"{"), 400, "malformed JSON")
        self.assertStillServing()

    def test_model_that_fails_to_load(self):
        d = os.path.join(self.repo, "broken")
        os.makedirs(os.path.join(d, "1"), exist_ok=True)
        with open(os.path.join(d, "1", "model.onnx"), "wb") as f:
            f.write(b"this is not an onnx model")
        with open(os.path.join(d, "config.pbtxt"), "w") as f:
            f.write('name: "broken"\nbackend: "onnxruntime"\nmax_batch_size: 0\n')
        r = self.post("/v2/repository/models/broken/load", headers=ADMIN)
        self.assertGreaterEqual(r.status_code, 400, r.text)
        self.assertIn("error", r.json())
        index = {m["name"]: m for m in self.post("/v2/repository/index", headers=ADMIN).json()}
        self.assertEqual(index["broken"]["state"], "UNAVAILABLE")
        self.assertTrue(index["broken"]["reason"])
        self.assertNotEqual(self.get("/v2/models/broken/ready").status_code, 200)
        self.assertError(self.post("/v2/repository/models/not_in_repo/load", headers=ADMIN), 404)
        self.assertStillServing()


class Shutdown(unittest.TestCase):
    def test_sigterm_with_idle_keep_alive_connection_exits_0(self):
        repo = make_repository()
        server = FlywheelServer(FLYWHEEL, ["--model-repository", repo])
        try:
            server.start()
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
            conn.request("GET", "/v2/health/ready")
            self.assertEqual(conn.getresponse().status, 200)
            # The idle keep-alive connection (idle timeout 60 s) must not hold the exit up:
            # stop() fails if the process is still there after 30 s.
            self.assertEqual(server.stop(signal.SIGTERM, timeout=30), 0, server.output())
            conn.close()
        finally:
            server.stop()
            os.unlink(server.log.name)
            shutil.rmtree(repo, ignore_errors=True)


def main():
    global FLYWHEEL
    if len(sys.argv) < 2:
        sys.exit("usage: http_test.py PATH/TO/flywheel [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
