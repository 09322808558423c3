#!/usr/bin/python3
"""Writes small broken ONNX models to tests/fixtures/broken/ for tests/engine/broken_models_test.cc.

Each file is broken in one way (truncated, not protobuf, a cycle, absurd or negative dims, raw
data of the wrong size, an undefined input, unsupported operators, an opset out of range,
external data that leaves the model's folder or is missing/short). Models are written with
onnx.save / raw bytes and never go through onnx.checker, so that the engine's loader is what
meets the damage. Also writes external/valid/: a model whose weights live in weights.bin, with
an input and the expected output, and good/: a few tiny valid models (seeds for the fuzzer).

Run with Debian's interpreter: /usr/bin/python3 tools/gen_broken_models.py
"""

import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "broken")

# IR version 8 is what onnx 1.12 writes for opsets up to 17; kept fixed so outputs are stable.
IR_VERSION = 8


def model(nodes, inputs, outputs, initializers=(), opset=13, extra_opsets=(), ir_version=None):
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="gen_broken_models")
    m.ir_version = ir_version or IR_VERSION
    return m


def save(m, *path):
    full = os.path.join(OUT_DIR, *path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(m.SerializeToString())
    return full


def write_bytes(data, *path):
    full = os.path.join(OUT_DIR, *path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


def vi(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def mlp(opset=13):
    """y = Relu(x @ w + b): a small valid model of a few ops."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal((8,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["xwb"], name="add"),
        helper.make_node("Relu", ["xwb"], ["y"], name="relu"),
    ]
    return model(nodes, [vi("x", TensorProto.FLOAT, [2, 8])], [vi("y", TensorProto.FLOAT, [2, 8])],
                 [w, b], opset=opset)


def good_models():
    """Tiny valid models: the fuzzer's seeds (written to good/)."""
    save(mlp(), "good", "mlp.onnx")
    # Identity-like graph with no nodes at all, two inputs of different types, one dynamic dim.
    save(model([], [vi("x", TensorProto.FLOAT, [2, 3]), vi("ids", TensorProto.INT64, ["n", 4])],
               [vi("x", TensorProto.FLOAT, [2, 3]), vi("ids", TensorProto.INT64, ["n", 4])]),
         "good", "passthrough.onnx")
    # Constant node folded by the loader, then Add/Mul/Reshape/Transpose.
    c = helper.make_tensor("c", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    shape = numpy_helper.from_array(np.array([3, 2], np.int64), "shape")
    nodes = [
        helper.make_node("Constant", [], ["c"], value=c, name="const"),
        helper.make_node("Add", ["x", "c"], ["s"], name="add"),
        helper.make_node("Mul", ["s", "s"], ["sq"], name="mul"),
        helper.make_node("Transpose", ["sq"], ["t"], perm=[1, 0], name="transpose"),
        helper.make_node("Reshape", ["t", "shape"], ["y"], name="reshape"),
    ]
    save(model(nodes, [vi("x", TensorProto.FLOAT, ["batch", 3])], [vi("y", TensorProto.FLOAT, [3, "batch"])],
               [shape]), "good", "const_add_mul.onnx")
    # Softmax over a Gemm, opset 11 (attribute forms of the old opsets).
    w = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), "w")
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["g"], transB=0, name="gemm"),
        helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax"),
    ]
    save(model(nodes, [vi("x", TensorProto.FLOAT, [1, 4])], [vi("y", TensorProto.FLOAT, [1, 3])],
               [w], opset=11), "good", "gemm_softmax.onnx")


def not_models():
    data = mlp().SerializeToString()
    write_bytes(data[: len(data) // 2], "truncated.onnx")
    write_bytes(b"", "empty.onnx")
    # A zip archive header (what a PyTorch .pt file starts with) instead of protobuf.
    write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 2, "wrong_magic.onnx")
    write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                "random_bytes.onnx")
    write_bytes(b"graph {\n  node { op_type: \"Relu\" }\n}\nThis is a text file, not a model.\n",
                "text.onnx")


def graph_damage():
    f = TensorProto.FLOAT
    # Cycle: a = Add(x, b), b = Relu(a); the NodeProto inputs are hand-edited into a loop.
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="add_in_cycle"),
        helper.make_node("Relu", ["a"], ["b"], name="relu_in_cycle"),
        helper.make_node("Relu", ["b"], ["y"], name="after_cycle"),
    ]
    save(model(nodes, [vi("x", f, [2])], [vi("y", f, [2])]), "cyclic.onnx")

    # An initializer of 2^80 elements; no data (any data would be a 2^80-byte file).
    huge = TensorProto(name="huge_weight", data_type=f, dims=[2**40, 2**40])
    nodes = [helper.make_node("Add", ["x", "huge_weight"], ["y"], name="add_huge")]
    save(model(nodes, [vi("x", f, [1])], [vi("y", f, ["h0", "h1"])], [huge]), "huge_initializer_dims.onnx")

    # An initializer of 2^40 x 2^20 elements with (far too little) raw data: passes the element
    # count limit on neither side of the loader.
    big = TensorProto(name="big_weight", data_type=f, dims=[2**31, 2**31], raw_data=b"\0" * 16)
    nodes = [helper.make_node("Add", ["x", "big_weight"], ["y"], name="add_big")]
    save(model(nodes, [vi("x", f, [1])], [vi("y", f, ["b0", "b1"])], [big]), "big_initializer_dims.onnx")

    # An input declaring a dimension of 2^62.
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    save(model(nodes, [vi("x", f, [2**62, 2])], [vi("y", f, [2**62, 2])]), "huge_input_dim.onnx")

    # Negative dims on an initializer and on an input.
    neg = TensorProto(name="neg_weight", data_type=f, dims=[-1, 4], raw_data=b"\0" * 16)
    nodes = [helper.make_node("Add", ["x", "neg_weight"], ["y"], name="add_neg")]
    save(model(nodes, [vi("x", f, [4])], [vi("y", f, ["n0", 4])], [neg]), "negative_initializer_dims.onnx")
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    save(model(nodes, [vi("x", f, [-3, 2])], [vi("y", f, ["n0", 2])]), "negative_input_dim.onnx")

    # raw_data of 10 bytes for a [4,4] float tensor (64 bytes).
    bad = TensorProto(name="short_weight", data_type=f, dims=[4, 4], raw_data=b"\1" * 10)
    nodes = [helper.make_node("MatMul", ["x", "short_weight"], ["y"], name="matmul")]
    save(model(nodes, [vi("x", f, [2, 4])], [vi("y", f, [2, 4])], [bad]), "raw_data_mismatch.onnx")

    # float_data of 3 values for a [2,2] tensor.
    bad = TensorProto(name="few_values", data_type=f, dims=[2, 2], float_data=[1.0, 2.0, 3.0])
    nodes = [helper.make_node("Add", ["x", "few_values"], ["y"], name="add")]
    save(model(nodes, [vi("x", f, [2, 2])], [vi("y", f, [2, 2])], [bad]), "typed_data_mismatch.onnx")

    # A node reading a name nothing defines.
    nodes = [helper.make_node("MatMul", ["x", "missing_weight"], ["y"], name="matmul_reads_missing")]
    save(model(nodes, [vi("x", f, [2, 4])], [vi("y", f, [2, "m"])]), "missing_initializer.onnx")

    # A graph output that no node produces.
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    save(model(nodes, [vi("x", f, [2])], [vi("y", f, [2]), vi("orphan", f, [2])]),
         "orphan_output.onnx")


def unsupported_ops():
    f = TensorProto.FLOAT
    i64 = TensorProto.INT64
    # Loop body: one iteration variable pass-through.
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
         helper.make_node("Identity", ["v_in"], ["v_out"], name="body_v")],
        "body",
        [vi("iter", i64, []), vi("cond_in", TensorProto.BOOL, []), vi("v_in", f, [2])],
        [vi("cond_out", TensorProto.BOOL, []), vi("v_out", f, [2])])
    trip = numpy_helper.from_array(np.array(3, np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz1"], name="nonzero_a"),
        helper.make_node("NonZero", ["x"], ["nz2"], name="nonzero_b"),
        helper.make_node("Loop", ["trip", "cond", "x"], ["looped"], body=body, name="loop_1"),
        helper.make_node("FancyFusedThing", ["looped"], ["ms1"], domain="com.microsoft",
                         name="ms_op_1"),
        helper.make_node("FancyFusedThing", ["ms1"], ["ms2"], domain="com.microsoft",
                         name="ms_op_2"),
        helper.make_node("Relu", ["ms2"], ["y"], name="relu_ok"),
    ]
    m = model(nodes, [vi("x", f, [2])],
              [vi("y", f, ["y0"]), vi("nz1", i64, [1, "k1"]), vi("nz2", i64, [1, "k2"])], [trip, cond],
              extra_opsets=[("com.microsoft", 1)])
    save(m, "unsupported_ops.onnx")


def opsets():
    save(mlp(opset=7), "opset_too_old.onnx")
    m = mlp(opset=19)
    m.ir_version = 9
    save(m, "opset_too_new.onnx")


def external_data():
    """external/<case>/model.onnx, each in its own folder; external/secret.bin lies outside them."""
    ext = os.path.join(OUT_DIR, "external")
    write_bytes(b"not for the model to read\n" * 4, "external", "secret.bin")

    def ext_model(location, length=64, offset=None):
        w = TensorProto(name="ext_weight", data_type=TensorProto.FLOAT, dims=[4, 4])
        w.data_location = TensorProto.EXTERNAL
        entries = [("location", location), ("length", str(length))]
        if offset is not None:
            entries.append(("offset", str(offset)))
        for k, v in entries:
            e = w.external_data.add()
            e.key, e.value = k, v
        nodes = [helper.make_node("MatMul", ["x", "ext_weight"], ["y"], name="matmul")]
        return model(nodes, [vi("x", TensorProto.FLOAT, [2, 4])],
                     [vi("y", TensorProto.FLOAT, [2, 4])], [w])

    save(ext_model("../secret.bin"), "external", "parent_dir", "model.onnx")
    save(ext_model("/etc/passwd"), "external", "absolute", "model.onnx")
    save(ext_model("link.bin"), "external", "symlink", "model.onnx")
    link = os.path.join(ext, "symlink", "link.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink("../secret.bin", link)
    save(ext_model("nothere.bin"), "external", "missing_file", "model.onnx")
    save(ext_model("short.bin"), "external", "short_file", "model.onnx")
    write_bytes(b"\0" * 8, "external", "short_file", "short.bin")
    save(ext_model("weights.bin", offset=1 << 20), "external", "offset_past_end", "model.onnx")
    write_bytes(b"\0" * 64, "external", "offset_past_end", "weights.bin")

    # A valid model whose initializers all live in weights.bin.
    m = mlp()
    valid = os.path.join(ext, "valid")
    os.makedirs(valid, exist_ok=True)
    onnx.save_model(m, os.path.join(valid, "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, size_threshold=0, location="weights.bin")
    onnx.checker.check_model(os.path.join(valid, "model.onnx"))
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    w = numpy_helper.to_array(mlp().graph.initializer[0])
    b = numpy_helper.to_array(mlp().graph.initializer[1])
    y = np.maximum(x.astype(np.float64) @ w + b, 0).astype(np.float32)
    os.makedirs(os.path.join(valid, "case0"), exist_ok=True)
    np.save(os.path.join(valid, "case0", "input_0.npy"), x)
    np.save(os.path.join(valid, "case0", "output_0.npy"), y)


def fuzz_corpus():
    """Seeds for tests/fuzz: the tiny valid and broken models, small op fixtures, .npy files."""
    onnx_dir = os.path.join(REPO_ROOT, "tests", "fuzz", "corpus", "onnx_loader")
    npy_dir = os.path.join(REPO_ROOT, "tests", "fuzz", "corpus", "npy")
    for d in (onnx_dir, npy_dir):
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
    for root, _, files in os.walk(OUT_DIR):
        if os.path.join("broken", "external") in root:
            continue  # the fuzzer loads from memory, where external data is refused anyway
        for name in files:
            if name.endswith(".onnx"):
                rel = os.path.relpath(os.path.join(root, name), OUT_DIR).replace(os.sep, "_")
                shutil.copyfile(os.path.join(root, name), os.path.join(onnx_dir, rel))
    # The smallest single-operator fixture of each operator in tests/fixtures/ops/ (<op>_<case>/):
    # one seed per kernel keeps the corpus small enough to get through in a short fuzzing run.
    ops_dir = os.path.join(REPO_ROOT, "tests", "fixtures", "ops")
    smallest = {}
    if os.path.isdir(ops_dir):
        for name in sorted(os.listdir(ops_dir)):
            src = os.path.join(ops_dir, name, "model.onnx")
            if not os.path.isfile(src) or os.path.getsize(src) > 2048:
                continue
            op = name.split("_")[0]
            if op not in smallest or os.path.getsize(src) < os.path.getsize(smallest[op]):
                smallest[op] = src
    for op, src in sorted(smallest.items()):
        shutil.copyfile(src, os.path.join(onnx_dir, f"op_{op}.onnx"))
    arrays = {
        "f32_2x3": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i64_scalar": np.array(7, np.int64),
        "bool_4": np.array([True, False, True, True]),
        "u8_empty": np.zeros((0, 3), np.uint8),
        "f64_big_endian": np.arange(4, dtype=">f8"),
        "f16_2x2": np.ones((2, 2), np.float16),
        "i32_fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    }
    for name, a in arrays.items():
        np.save(os.path.join(npy_dir, name + ".npy"), a)
    # Format version 2.0 (4-byte header length).
    with open(os.path.join(npy_dir, "v2_f32.npy"), "wb") as f:
        np.lib.format.write_array(f, np.arange(3, dtype=np.float32), version=(2, 0))
    with open(os.path.join(npy_dir, "truncated.npy"), "wb") as f:
        data = open(os.path.join(npy_dir, "f32_2x3.npy"), "rb").read()
        f.write(data[: len(data) - 5])


def main():
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(OUT_DIR)
    good_models()
    not_models()
    graph_damage()
    unsupported_ops()
    opsets()
    external_data()
    fuzz_corpus()
    for root, _, files in sorted(os.walk(OUT_DIR)):
        for name in sorted(files):
            p = os.path.join(root, name)
            print(f"{os.path.relpath(p, REPO_ROOT)}: {os.lstat(p).st_size} bytes")


if __name__ == "__main__":
    main()
