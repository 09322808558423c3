"""Model repositories for the end-to-end tests: small ONNX models written with Debian's
python3-onnx, their config.pbtxt, and the KServe BYTES framing the tests send and read.
"""
import os
import shutil
import struct
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def onnx_type(datatype):
    """The ONNX element type of a KServe datatype name ("FP32" -> TensorProto.FLOAT)."""
    from onnx import TensorProto
    return {"BOOL": TensorProto.BOOL, "INT8": TensorProto.INT8, "INT16": TensorProto.INT16,
            "INT32": TensorProto.INT32, "INT64": TensorProto.INT64, "UINT8": TensorProto.UINT8,
            "UINT16": TensorProto.UINT16, "UINT32": TensorProto.UINT32,
            "UINT64": TensorProto.UINT64, "FP16": TensorProto.FLOAT16,
            "FP32": TensorProto.FLOAT, "FP64": TensorProto.DOUBLE,
            "BYTES": TensorProto.STRING}[datatype]


def write_model(model_dir, name, nodes, inputs, outputs, max_batch_size=0):
    """<model_dir>/1/model.onnx and config.pbtxt; inputs/outputs: lists of (name, onnx elem
    type, config data_type), every tensor of shape [-1]."""
    import onnx
    from onnx import helper
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    gin = [helper.make_tensor_value_info(n, e, ["n"]) for n, e, _ in inputs]
    gout = [helper.make_tensor_value_info(n, e, ["n"]) for n, e, _ in outputs]
    graph = helper.make_graph(nodes, name, gin, gout)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="flywheel-tests")
    onnx.save(model, os.path.join(model_dir, "1", "model.onnx"))

    def block(items):
        return ",\n".join(f'  {{ name: "{n}" data_type: {c} dims: [ -1 ] }}' for n, _, c in items)
    with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
        f.write(f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch_size}\n')
        f.write("input [\n" + block(inputs) + "\n]\noutput [\n" + block(outputs) + "\n]\n")


def write_identity(model_dir, name, inputs):
    """One Identity per input IN_<x> -> OUT_<x>."""
    from onnx import helper
    outputs = [("OUT" + n[2:], e, c) for n, e, c in inputs]
    nodes = [helper.make_node("Identity", [i[0]], [o[0]], name="id_" + i[0])
             for i, o in zip(inputs, outputs)]
    write_model(model_dir, name, nodes, inputs, outputs)


def simple_repository(prefix):
    """A temporary repository with the example `simple` model twice: simple and simple2."""
    repo = tempfile.mkdtemp(prefix=prefix)
    shutil.copytree(os.path.join(ROOT, "examples", "models", "simple"), os.path.join(repo, "simple"))
    shutil.copytree(os.path.join(repo, "simple"), os.path.join(repo, "simple2"))
    cfg = os.path.join(repo, "simple2", "config.pbtxt")
    with open(cfg) as f:
        text = f.read().replace('name: "simple"', 'name: "simple2"')
    with open(cfg, "w") as f:
        f.write(text)
    return repo


def length_prefixed(elems):
    """BYTES elements in the binary form: a 4-byte little-endian length before each."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elems)


def parse_length_prefixed(raw):
    out, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out
