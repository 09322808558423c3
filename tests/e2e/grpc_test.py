#!/usr/bin/python3
"""End-to-end test of flywheel's gRPC front end (KServe v2 GRPCInferenceService and
grpc.health.v1.Health) against the real `flywheel serve` binary on free loopback ports.

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/grpc_test.py PATH/TO/flywheel PATH/TO/proto [unittest args]

Python stubs are generated from our own .proto files at start (gen_grpc_stubs.py). The model
repository is a private copy of examples/models/simple plus models written here: `simple2` (a copy
of simple that the load/unload tests may change), `strings` (BYTES identity) and `identity` (one
identity per numeric type, for every typed contents field).
"""
import os
import shutil
import signal
import sys
import threading
import time
import unittest

import grpc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from e2e_models import (length_prefixed, onnx_type, parse_length_prefixed,  # noqa: E402
                        simple_repository, write_identity)
from gen_grpc_stubs import load_stubs  # noqa: E402
from server_util import FlywheelServer  # noqa: E402

FLYWHEEL = None
PROTO_DIR = None
pb = None        # grpc_service_pb2
pb_grpc = None   # grpc_service_pb2_grpc
health_pb = None
health_grpc = None

ADMIN_TOKEN = "s3cret-token"
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)]

# identity model: input name -> (KServe datatype, numpy dtype, typed contents field, config type)
IDENTITY_TYPES = {
    "IN_BOOL": ("BOOL", np.bool_, "bool_contents", "TYPE_BOOL"),
    "IN_INT8": ("INT8", np.int8, "int_contents", "TYPE_INT8"),
    "IN_INT32": ("INT32", np.int32, "int_contents", "TYPE_INT32"),
    "IN_INT64": ("INT64", np.int64, "int64_contents", "TYPE_INT64"),
    "IN_UINT8": ("UINT8", np.uint8, "uint_contents", "TYPE_UINT8"),
    "IN_UINT32": ("UINT32", np.uint32, "uint_contents", "TYPE_UINT32"),
    "IN_UINT64": ("UINT64", np.uint64, "uint64_contents", "TYPE_UINT64"),
    "IN_FP32": ("FP32", np.float32, "fp32_contents", "TYPE_FP32"),
    "IN_FP64": ("FP64", np.float64, "fp64_contents", "TYPE_FP64"),
}


# --- the model repository ---------------------------------------------------------------------
def make_repository():
    from onnx import TensorProto
    repo = simple_repository("flywheel-grpc-repo-")
    write_identity(os.path.join(repo, "strings"), "strings",
                   [("IN_STR", TensorProto.STRING, "TYPE_STRING")])
    write_identity(os.path.join(repo, "identity"), "identity",
                   [(n, onnx_type(t[0]), t[3]) for n, t in IDENTITY_TYPES.items()])
    return repo


# --- request helpers --------------------------------------------------------------------------
def simple_request(a, b, model="simple", raw=False, request_id="", outputs=()):
    """INPUT0=a, INPUT1=b (int32 arrays of shape [batch, 16])."""
    req = pb.ModelInferRequest(model_name=model, id=request_id)
    for name, arr in (("INPUT0", a), ("INPUT1", b)):
        t = req.inputs.add(name=name, datatype="INT32", shape=list(arr.shape))
        if raw:
            req.raw_input_contents.append(arr.astype("<i4").tobytes())
        else:
            t.contents.int_contents.extend(arr.flatten().tolist())
    for o in outputs:
        req.outputs.add(name=o)
    return req


def output_array(resp, name):
    names = [o.name for o in resp.outputs]
    assert len(resp.raw_output_contents) == len(resp.outputs), "outputs must be in raw form"
    i = names.index(name)
    out = resp.outputs[i]
    dtype = {"INT32": "<i4", "INT64": "<i8", "FP32": "<f4", "FP64": "<f8", "BOOL": "?",
             "INT8": "i1", "UINT8": "u1", "UINT32": "<u4", "UINT64": "<u8"}[out.datatype]
    return np.frombuffer(resp.raw_output_contents[i], dtype=dtype).reshape(list(out.shape))


class GrpcTestBase(unittest.TestCase):
    server = None
    repo = None

    @classmethod
    def setUpClass(cls):
        cls.repo = make_repository()
        # Explicit control mode, as load and unload need; every model loaded at start.
        cls.server = FlywheelServer(FLYWHEEL, ["--model-repository", cls.repo,
                                               "--model-control-mode", "explicit",
                                               "--load-model", "*",
                                               "--admin-token", ADMIN_TOKEN]).start()
        cls.channel = grpc.insecure_channel(cls.server.grpc_target, options=CHANNEL_OPTIONS)
        grpc.channel_ready_future(cls.channel).result(timeout=30)
        cls.stub = pb_grpc.GRPCInferenceServiceStub(cls.channel)
        cls.health = health_grpc.HealthStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        output = cls.server.output()
        os.unlink(cls.server.log.name)
        shutil.rmtree(cls.repo, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"flywheel serve exited with {code}:\n{output}")

    def assertRpcError(self, fn, code, *fragments):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        err = cm.exception
        self.assertEqual(err.code(), code, err.details())
        for frag in fragments:
            self.assertIn(frag, err.details())
        return err

    def assertStillServing(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        resp = self.stub.ModelInfer(simple_request(a, a), timeout=30)
        np.testing.assert_array_equal(output_array(resp, "OUTPUT0"), a + a)


class ServerAndModelInfo(GrpcTestBase):
    def test_live_ready_metadata(self):
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest()).live)
        self.assertTrue(self.stub.ServerReady(pb.ServerReadyRequest()).ready)
        md = self.stub.ServerMetadata(pb.ServerMetadataRequest())
        self.assertTrue(md.name)
        self.assertTrue(md.version)

    def test_model_ready(self):
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="simple")).ready)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="simple",
                                                                  version="1")).ready)
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name="simple",
                                                                   version="7")).ready)
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name="no_such_model")).ready)

    def test_model_metadata(self):
        md = self.stub.ModelMetadata(pb.ModelMetadataRequest(name="simple"))
        self.assertEqual(md.name, "simple")
        self.assertIn("1", md.versions)
        self.assertEqual([t.name for t in md.inputs], ["INPUT0", "INPUT1"])
        self.assertEqual([t.name for t in md.outputs], ["OUTPUT0", "OUTPUT1"])
        for t in list(md.inputs) + list(md.outputs):
            self.assertEqual(t.datatype, "INT32")
            self.assertEqual(list(t.shape), [-1, 16])
        self.assertRpcError(
            lambda: self.stub.ModelMetadata(pb.ModelMetadataRequest(name="no_such_model")),
            grpc.StatusCode.NOT_FOUND, "no_such_model")

    def test_model_config(self):
        cfg = self.stub.ModelConfig(pb.ModelConfigRequest(name="simple")).config
        self.assertEqual(cfg.name, "simple")
        self.assertEqual(cfg.max_batch_size, 8)
        self.assertEqual([i.name for i in cfg.input], ["INPUT0", "INPUT1"])
        self.assertEqual(list(cfg.input[0].dims), [16])
        self.assertRpcError(
            lambda: self.stub.ModelConfig(pb.ModelConfigRequest(name="no_such_model")),
            grpc.StatusCode.NOT_FOUND)


class Inference(GrpcTestBase):
    def test_typed_contents(self):
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        b = np.full((1, 16), 3, dtype=np.int32)
        resp = self.stub.ModelInfer(simple_request(a, b, request_id="typed-1"))
        self.assertEqual(resp.model_name, "simple")
        self.assertEqual(resp.model_version, "1")
        self.assertEqual(resp.id, "typed-1")
        np.testing.assert_array_equal(output_array(resp, "OUTPUT0"), a + b)
        np.testing.assert_array_equal(output_array(resp, "OUTPUT1"), a - b)
        for out in resp.outputs:
            self.assertEqual(out.datatype, "INT32")
            self.assertEqual(list(out.shape), [1, 16])

    def test_raw_contents_batch(self):
        rng = np.random.default_rng(1)
        a = rng.integers(-1000, 1000, size=(4, 16), dtype=np.int32)
        b = rng.integers(-1000, 1000, size=(4, 16), dtype=np.int32)
        resp = self.stub.ModelInfer(simple_request(a, b, raw=True))
        np.testing.assert_array_equal(output_array(resp, "OUTPUT0"), a + b)
        np.testing.assert_array_equal(output_array(resp, "OUTPUT1"), a - b)

    def test_requested_output_subset(self):
        a = np.ones((1, 16), dtype=np.int32)
        resp = self.stub.ModelInfer(simple_request(a, a, outputs=["OUTPUT1"]))
        self.assertEqual([o.name for o in resp.outputs], ["OUTPUT1"])
        np.testing.assert_array_equal(output_array(resp, "OUTPUT1"), np.zeros((1, 16)))

    def test_parameters_are_accepted(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        req.parameters["priority"].int64_param = 1
        req.parameters["timeout"].int64_param = 10_000_000
        req.parameters["binary_data_output"].bool_param = True
        resp = self.stub.ModelInfer(req)
        np.testing.assert_array_equal(output_array(resp, "OUTPUT0"), a + a)

    def test_bytes_typed_and_raw(self):
        elems = [b"hello", b"", b"\x00\xffbinary", "ünïcode".encode()]
        req = pb.ModelInferRequest(model_name="strings")
        t = req.inputs.add(name="IN_STR", datatype="BYTES", shape=[len(elems)])
        t.contents.bytes_contents.extend(elems)
        resp = self.stub.ModelInfer(req)
        self.assertEqual(resp.outputs[0].datatype, "BYTES")
        self.assertEqual(list(resp.outputs[0].shape), [len(elems)])
        self.assertEqual(parse_length_prefixed(resp.raw_output_contents[0]), elems)

        req = pb.ModelInferRequest(model_name="strings")
        req.inputs.add(name="IN_STR", datatype="BYTES", shape=[len(elems)])
        req.raw_input_contents.append(length_prefixed(elems))
        resp = self.stub.ModelInfer(req)
        self.assertEqual(parse_length_prefixed(resp.raw_output_contents[0]), elems)

    def test_every_typed_field(self):
        rng = np.random.default_rng(7)
        req = pb.ModelInferRequest(model_name="identity")
        expected = {}
        for name, (datatype, np_type, field, _) in IDENTITY_TYPES.items():
            if np_type == np.bool_:
                arr = rng.integers(0, 2, size=5).astype(np.bool_)
            elif np.issubdtype(np_type, np.integer):
                info = np.iinfo(np_type)
                arr = np.array([info.min, info.max, 0, 1, info.max // 3], dtype=np_type)
            else:
                arr = rng.standard_normal(5).astype(np_type)
            t = req.inputs.add(name=name, datatype=datatype, shape=[5])
            getattr(t.contents, field).extend(arr.tolist())
            expected["OUT" + name[2:]] = arr
        resp = self.stub.ModelInfer(req)
        for out_name, arr in expected.items():
            got = output_array(resp, out_name)
            self.assertEqual(got.dtype, arr.dtype, out_name)
            np.testing.assert_array_equal(got, arr, err_msg=out_name)

    def test_concurrent_calls(self):
        futures = []
        for i in range(64):
            a = np.full((1, 16), i, dtype=np.int32)
            futures.append((i, self.stub.ModelInfer.future(simple_request(a, a, raw=i % 2 == 0,
                                                                          request_id=str(i)))))
        for i, f in futures:
            resp = f.result(timeout=60)
            self.assertEqual(resp.id, str(i))
            np.testing.assert_array_equal(output_array(resp, "OUTPUT0"),
                                          np.full((1, 16), 2 * i, dtype=np.int32))


class BadInputs(GrpcTestBase):
    def infer_error(self, req, code, *fragments):
        err = self.assertRpcError(lambda: self.stub.ModelInfer(req, timeout=30), code, *fragments)
        self.assertStillServing()
        return err

    def test_wrong_datatype(self):
        req = pb.ModelInferRequest(model_name="simple")
        for name in ("INPUT0", "INPUT1"):
            t = req.inputs.add(name=name, datatype="FP32", shape=[1, 16])
            t.contents.fp32_contents.extend([1.0] * 16)
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT0")

    def test_contents_field_does_not_match_datatype(self):
        req = pb.ModelInferRequest(model_name="simple")
        for name in ("INPUT0", "INPUT1"):
            t = req.inputs.add(name=name, datatype="INT32", shape=[1, 16])
            t.contents.fp32_contents.extend([1.0] * 16)
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT0", "int_contents")

    def test_unknown_datatype(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        req.inputs[0].datatype = "INT33"
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INT33")

    def test_wrong_shape(self):
        a = np.ones((1, 15), dtype=np.int32)
        self.infer_error(simple_request(a, a), grpc.StatusCode.INVALID_ARGUMENT, "INPUT0")

    def test_batch_too_large(self):
        a = np.ones((9, 16), dtype=np.int32)
        self.infer_error(simple_request(a, a, raw=True), grpc.StatusCode.INVALID_ARGUMENT)

    def test_element_count_mismatch(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        del req.inputs[1].contents.int_contents[-1]
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT1", "15", "16")

    def test_raw_size_mismatch(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a, raw=True)
        req.raw_input_contents[0] = req.raw_input_contents[0][:-3]
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT0", "61 bytes")

    def test_raw_count_mismatch(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a, raw=True)
        del req.raw_input_contents[1]
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents")

    def test_mixed_raw_and_typed(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a, raw=True)
        req.inputs[0].contents.int_contents.extend([1] * 16)
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT0")

    def test_truncated_raw_bytes(self):
        req = pb.ModelInferRequest(model_name="strings")
        req.inputs.add(name="IN_STR", datatype="BYTES", shape=[2])
        req.raw_input_contents.append(length_prefixed([b"abc", b"defg"])[:-1])
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "IN_STR")

    def test_missing_input(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        del req.inputs[1]
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT1")

    def test_unknown_input(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        t = req.inputs.add(name="INPUT9", datatype="INT32", shape=[1, 16])
        t.contents.int_contents.extend([0] * 16)
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "INPUT9")

    def test_unknown_output(self):
        a = np.ones((1, 16), dtype=np.int32)
        self.infer_error(simple_request(a, a, outputs=["OUTPUT7"]),
                         grpc.StatusCode.INVALID_ARGUMENT, "OUTPUT7")

    def test_unknown_model(self):
        a = np.ones((1, 16), dtype=np.int32)
        self.infer_error(simple_request(a, a, model="no_such_model"),
                         grpc.StatusCode.NOT_FOUND, "no_such_model")

    def test_unknown_version(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        req.model_version = "42"
        self.infer_error(req, grpc.StatusCode.NOT_FOUND, "42")

    def test_negative_priority(self):
        a = np.ones((1, 16), dtype=np.int32)
        req = simple_request(a, a)
        req.parameters["priority"].int64_param = -3
        self.infer_error(req, grpc.StatusCode.INVALID_ARGUMENT, "priority")

    def test_message_too_large(self):
        req = pb.ModelInferRequest(model_name="simple")
        req.inputs.add(name="INPUT0", datatype="INT32", shape=[1, 16])
        req.raw_input_contents.append(b"\0" * (65 << 20))
        self.infer_error(req, grpc.StatusCode.RESOURCE_EXHAUSTED)


class Streaming(GrpcTestBase):
    def test_stream_answers_every_request_and_survives_errors(self):
        requests, expected = [], {}
        for i in range(24):
            a = np.full((1, 16), i, dtype=np.int32)
            if i % 6 == 1:
                requests.append(simple_request(a, a, model="no_such_model", request_id=f"r{i}"))
                expected[f"r{i}"] = None
            elif i % 6 == 4:
                bad = np.ones((1, 15), dtype=np.int32)
                requests.append(simple_request(bad, bad, request_id=f"r{i}"))
                expected[f"r{i}"] = None
            else:
                requests.append(simple_request(a, a, raw=i % 2 == 0, request_id=f"r{i}"))
                expected[f"r{i}"] = a + a
        responses = list(self.stub.ModelStreamInfer(iter(requests), timeout=60))
        self.assertEqual(len(responses), len(requests))
        seen = set()
        for r in responses:
            rid = r.infer_response.id
            self.assertIn(rid, expected)
            self.assertNotIn(rid, seen)
            seen.add(rid)
            if expected[rid] is None:
                self.assertTrue(r.error_message, rid)
            else:
                self.assertEqual(r.error_message, "", rid)
                np.testing.assert_array_equal(output_array(r.infer_response, "OUTPUT0"),
                                              expected[rid])
        self.assertStillServing()

    def test_interactive_stream(self):
        """One request at a time on an open stream: each answer arrives before the next send."""
        import queue
        outbox = queue.Queue()

        def gen():
            while True:
                item = outbox.get()
                if item is None:
                    return
                yield item

        call = self.stub.ModelStreamInfer(gen(), timeout=60)
        for i in range(5):
            a = np.full((1, 16), i, dtype=np.int32)
            outbox.put(simple_request(a, a, request_id=str(i)))
            r = next(call)
            self.assertEqual(r.error_message, "")
            self.assertEqual(r.infer_response.id, str(i))
            np.testing.assert_array_equal(output_array(r.infer_response, "OUTPUT1"),
                                          np.zeros((1, 16)))
        outbox.put(None)
        self.assertEqual(list(call), [])

    def test_cancelled_stream_leaves_server_serving(self):
        def gen():
            a = np.ones((1, 16), dtype=np.int32)
            for i in range(200):
                yield simple_request(a, a, request_id=str(i))
            time.sleep(0.2)

        call = self.stub.ModelStreamInfer(gen(), timeout=60)
        next(call)
        call.cancel()
        self.assertStillServing()


class Statistics(GrpcTestBase):
    def test_statistics(self):
        a = np.ones((1, 16), dtype=np.int32)
        for _ in range(3):
            self.stub.ModelInfer(simple_request(a, a))
        stats = self.stub.ModelStatistics(pb.ModelStatisticsRequest(name="simple"))
        self.assertEqual(len(stats.model_stats), 1)
        s = stats.model_stats[0]
        self.assertEqual(s.name, "simple")
        self.assertEqual(s.version, "1")
        self.assertGreaterEqual(s.inference_count, 3)
        self.assertGreaterEqual(s.execution_count, 1)
        self.assertGreaterEqual(s.inference_stats.success.count, 3)
        self.assertGreater(s.inference_stats.success.ns, 0)
        self.assertGreater(s.last_inference, 0)
        everything = self.stub.ModelStatistics(pb.ModelStatisticsRequest())
        self.assertIn("simple", [m.name for m in everything.model_stats])
        self.assertRpcError(
            lambda: self.stub.ModelStatistics(pb.ModelStatisticsRequest(name="no_such_model")),
            grpc.StatusCode.NOT_FOUND)


class Repository(GrpcTestBase):
    def index(self):
        resp = self.stub.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=ADMIN)
        return {m.name: m for m in resp.models}

    def test_admin_token_is_required(self):
        self.assertRpcError(lambda: self.stub.RepositoryIndex(pb.RepositoryIndexRequest()),
                            grpc.StatusCode.UNAUTHENTICATED, "authorization")
        self.assertRpcError(
            lambda: self.stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name="simple2"),
                metadata=(("authorization", "Bearer wrong"),)),
            grpc.StatusCode.PERMISSION_DENIED)
        self.assertRpcError(
            lambda: self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(
                model_name="simple2")), grpc.StatusCode.UNAUTHENTICATED)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="simple2")).ready)

    def test_index_unload_load(self):
        idx = self.index()
        for name in ("simple", "simple2", "strings", "identity"):
            self.assertIn(name, idx)
            self.assertEqual(idx[name].state, "READY", idx[name].reason)
        ready_only = self.stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True),
                                               metadata=ADMIN)
        self.assertIn("simple2", [m.name for m in ready_only.models])

        self.stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="simple2"),
                                        metadata=ADMIN)
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name="simple2")).ready)
        self.assertNotEqual(self.index()["simple2"].state, "READY")
        a = np.ones((1, 16), dtype=np.int32)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.ModelInfer(simple_request(a, a, model="simple2"))
        self.assertIn(cm.exception.code(),
                      (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND))

        self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="simple2"),
                                      metadata=ADMIN)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="simple2")).ready)
        resp = self.stub.ModelInfer(simple_request(a, a, model="simple2"))
        np.testing.assert_array_equal(output_array(resp, "OUTPUT0"), a + a)

    def test_load_with_config_parameter(self):
        config = ('{"name": "simple2", "platform": "onnxruntime_onnx", "max_batch_size": 4,'
                  ' "input": [{"name": "INPUT0", "data_type": "TYPE_INT32", "dims": [16]},'
                  '           {"name": "INPUT1", "data_type": "TYPE_INT32", "dims": [16]}],'
                  ' "output": [{"name": "OUTPUT0", "data_type": "TYPE_INT32", "dims": [16]},'
                  '            {"name": "OUTPUT1", "data_type": "TYPE_INT32", "dims": [16]}]}')
        req = pb.RepositoryModelLoadRequest(model_name="simple2")
        req.parameters["config"].string_param = config
        self.stub.RepositoryModelLoad(req, metadata=ADMIN)
        cfg = self.stub.ModelConfig(pb.ModelConfigRequest(name="simple2")).config
        self.assertEqual(cfg.max_batch_size, 4)
        a = np.ones((5, 16), dtype=np.int32)
        self.assertRpcError(lambda: self.stub.ModelInfer(simple_request(a, a, model="simple2")),
                            grpc.StatusCode.INVALID_ARGUMENT)
        # Back to the repository's own configuration.
        self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="simple2"),
                                      metadata=ADMIN)

    def test_bad_load_requests(self):
        req = pb.RepositoryModelLoadRequest(model_name="simple2")
        req.parameters["file:1/model.onnx"].bytes_param = b"\0"
        self.assertRpcError(lambda: self.stub.RepositoryModelLoad(req, metadata=ADMIN),
                            grpc.StatusCode.INVALID_ARGUMENT, "file:1/model.onnx")
        req = pb.RepositoryModelLoadRequest(model_name="simple2")
        req.parameters["config"].int64_param = 3
        self.assertRpcError(lambda: self.stub.RepositoryModelLoad(req, metadata=ADMIN),
                            grpc.StatusCode.INVALID_ARGUMENT, "config")
        req = pb.RepositoryModelLoadRequest(model_name="simple2")
        req.parameters["config"].string_param = "{not json"
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.RepositoryModelLoad(req, metadata=ADMIN)
        self.assertNotEqual(cm.exception.code(), grpc.StatusCode.OK)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.RepositoryModelLoad(
                pb.RepositoryModelLoadRequest(model_name="no_such_model"), metadata=ADMIN)
        self.assertIn("no_such_model", cm.exception.details())
        self.assertRpcError(
            lambda: self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(), metadata=ADMIN),
            grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="simple")).ready)


class Health(GrpcTestBase):
    def test_check(self):
        serving = health_pb.HealthCheckResponse.SERVING
        for service in ("", "inference.GRPCInferenceService"):
            resp = self.health.Check(health_pb.HealthCheckRequest(service=service))
            self.assertEqual(resp.status, serving, service)
        self.assertRpcError(
            lambda: self.health.Check(health_pb.HealthCheckRequest(service="no.Such")),
            grpc.StatusCode.NOT_FOUND, "no.Such")

    def test_watch(self):
        call = self.health.Watch(health_pb.HealthCheckRequest(service=""), timeout=30)
        self.assertEqual(next(call).status, health_pb.HealthCheckResponse.SERVING)
        call.cancel()
        unknown = self.health.Watch(health_pb.HealthCheckRequest(service="no.Such"), timeout=30)
        self.assertEqual(next(unknown).status, health_pb.HealthCheckResponse.SERVICE_UNKNOWN)
        unknown.cancel()


class Shutdown(unittest.TestCase):
    def test_sigterm_ends_watch_streams_and_exits_cleanly(self):
        repo = make_repository()
        server = FlywheelServer(FLYWHEEL, ["--model-repository", repo]).start()
        try:
            channel = grpc.insecure_channel(server.grpc_target)
            health = health_grpc.HealthStub(channel)
            call = health.Watch(health_pb.HealthCheckRequest(service=""), timeout=30)
            self.assertEqual(next(call).status, health_pb.HealthCheckResponse.SERVING)
            result = {}
            stopper = threading.Thread(target=lambda: result.update(code=server.stop(signal.SIGTERM)))
            stopper.start()
            statuses = []
            try:
                for r in call:
                    statuses.append(r.status)
            except grpc.RpcError as e:
                # The stream may be cut by the shutdown rather than ended by the server.
                self.assertNotEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED, e.details())
            stopper.join(60)
            self.assertEqual(result.get("code"), 0, server.output())
            self.assertNotIn(health_pb.HealthCheckResponse.SERVING, statuses)
            channel.close()
        finally:
            server.stop()
            os.unlink(server.log.name)
            shutil.rmtree(repo, ignore_errors=True)


def main():
    global FLYWHEEL, PROTO_DIR, pb, pb_grpc, health_pb, health_grpc
    if len(sys.argv) < 3:
        sys.exit("usage: grpc_test.py PATH/TO/flywheel PATH/TO/proto [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    PROTO_DIR = os.path.abspath(sys.argv[2])
    stubs = load_stubs(PROTO_DIR)
    pb = stubs["grpc_service_pb2"]
    pb_grpc = stubs["grpc_service_pb2_grpc"]
    health_pb = stubs["health_pb2"]
    health_grpc = stubs["health_pb2_grpc"]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)


if __name__ == "__main__":
    main()
