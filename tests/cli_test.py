#!/usr/bin/env python3
"""End-to-end test of the `flywheel` binary: `infer` (outputs, .npy files, errors) and `bench`.

Usage: /usr/bin/python3 tests/cli_test.py PATH/TO/flywheel   (run from the repository root)

It builds a tiny ONNX model itself (hand-encoded protobuf, so only the standard library and numpy
are needed) whose outputs numpy can compute, and also runs committed fixtures (an op and the
mlp_ranker example model) against their expected outputs.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

FLYWHEEL = None
FAILURES = []


# --- A minimal protobuf writer for the few ONNX messages the test model needs. ---------------
def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field, value):
    return _varint(field << 3) + _varint(value)


def _msg(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name, elem_type, dims):
    shape = b"".join(
        _msg(1, _msg(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, elem_type) + _msg(2, shape)
    return _msg(1, name) + _msg(2, _msg(1, tensor_type))


def _initializer(name, array):
    assert array.dtype == np.float32
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, 1) + _msg(8, name) +
            _msg(9, array.tobytes()))


def _node(op_type, inputs, outputs, attrs=b""):
    return (b"".join(_msg(1, i) for i in inputs) + b"".join(_msg(2, o) for o in outputs) +
            _msg(3, op_type.lower()) + _msg(4, op_type) + attrs)


FLOAT, INT64 = 1, 7
TABLE = np.arange(15, dtype=np.float32).reshape(5, 3) / 4 - 1


def tiny_model_bytes():
    """x FP32 [N,4], idx INT64 [N,2] -> 'y/t' = x.T, 'emb:0' = TABLE[idx]."""
    perm = _msg(5, _msg(1, "perm") + _int(8, 1) + _int(8, 0) + _int(20, 7))
    axis = _msg(5, _msg(1, "axis") + _int(3, 0) + _int(20, 2))
    graph = (_msg(1, _node("Transpose", ["x"], ["y/t"], perm)) +
             _msg(1, _node("Gather", ["table", "idx"], ["emb:0"], axis)) + _msg(2, "tiny") +
             _msg(5, _initializer("table", TABLE)) + _msg(11, _value_info("x", FLOAT, ["N", 4])) +
             _msg(11, _value_info("idx", INT64, ["N", 2])) +
             _msg(12, _value_info("y/t", FLOAT, [4, "N"])) +
             _msg(12, _value_info("emb:0", FLOAT, ["N", 2, 3])))
    return _int(1, 8) + _msg(2, "cli_test") + _msg(7, graph) + _msg(8, _msg(1, "") + _int(2, 13))


# --- Helpers. ----------------------------------------------------------------------------------
def run(*args):
    p = subprocess.run([FLYWHEEL, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def check(cond, what, detail=""):
    if cond:
        print(f"ok    {what}")
    else:
        print(f"FAIL  {what}\n      {detail}")
        FAILURES.append(what)


def close(got, want):
    return (got.shape == want.shape and got.dtype == want.dtype and
            bool(np.all(np.abs(got.astype(np.float64) - want) <= 1e-5 + 1e-4 * np.abs(want))))


def one_line_error(rc, err, *needles):
    lines = err.strip().splitlines()
    return rc != 0 and len(lines) == 1 and all(n in lines[0] for n in needles)


# --- Tests. ------------------------------------------------------------------------------------
def test_infer_tiny(tmp):
    model = os.path.join(tmp, "tiny.onnx")
    with open(model, "wb") as f:
        f.write(tiny_model_bytes())
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[0, 4], [2, 2], [1, 3]], dtype=np.int64)
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "idx.npy"), idx)
    xin, idxin = f"x={tmp}/x.npy", f"idx={tmp}/idx.npy"
    out = os.path.join(tmp, "out")

    rc, so, se = run("infer", model, "--input", idxin, "--input", xin, "--output-dir", out)
    check(rc == 0, "infer tiny model succeeds", se)
    check("y/t: FP32 [4,3] = [-1, " in so and "emb:0: FP32 [3,2,3] = [" in so and "...]" in so,
          "infer prints name, dtype, shape and first values", so)
    files = sorted(os.listdir(out)) if os.path.isdir(out) else []
    check(files == ["emb_0.npy", "y_t.npy"], "output names are sanitised into file names", files)
    if files == ["emb_0.npy", "y_t.npy"]:
        check(close(np.load(f"{out}/y_t.npy"), x.T), "written Transpose output matches numpy")
        check(close(np.load(f"{out}/emb_0.npy"), TABLE[idx]), "written Gather output matches numpy")

    rc, _, se = run("infer", model, "--input", xin, "--input", f"bogus={tmp}/x.npy")
    check(one_line_error(rc, se, "unknown input 'bogus'", "x FP32 [-1,4]", "idx INT64 [-1,2]"),
          "unknown input name: one-line error listing the expected inputs", se)
    rc, _, se = run("infer", model, "--input", xin)
    check(one_line_error(rc, se, "missing input idx INT64"), "missing input: one-line error", se)
    rc, _, se = run("infer", model, "--input", xin, "--input", f"idx={tmp}/nope.npy")
    check(one_line_error(rc, se, "nope.npy"), "missing .npy file: one-line error naming it", se)
    bad = os.path.join(tmp, "bad.npy")
    with open(bad, "wb") as f:
        f.write(b"not a numpy file")
    rc, _, se = run("infer", model, "--input", xin, "--input", f"idx={bad}")
    check(one_line_error(rc, se, "idx"), "corrupt .npy file: one-line error", se)
    rc, _, se = run("infer", model, "--input", xin, "--input", "idxnofile")
    check(one_line_error(rc, se, "NAME=FILE.npy"), "malformed --input: one-line error", se)
    rc, _, se = run("infer", os.path.join(tmp, "absent.onnx"), "--input", xin)
    check(one_line_error(rc, se, "absent.onnx"), "missing model file: one-line error", se)
    return model


def test_bench(model):
    rc, so, se = run("bench", model, "--batch", "1,4", "--threads", "1,2", "--iters", "5")
    check(rc == 0, "bench succeeds", se)
    lines = so.splitlines()
    header = [i for i, l in enumerate(lines) if l.split()[:3] == ["batch", "threads", "p50_us"]]
    check(len(header) == 1, "bench prints a table header", so)
    if header:
        rows = [l.split() for l in lines[header[0] + 1:header[0] + 5]]
        cells = [(int(r[0]), int(r[1])) for r in rows if len(r) == 7]
        check(cells == [(1, 1), (4, 1), (1, 2), (4, 2)], "bench prints one row per cell", so)
        check(all(float(r[2]) > 0 and float(r[3]) >= float(r[2]) for r in rows),
              "bench latencies are positive, p90 >= p50", so)
    rc, so, se = run("bench", model, "--batch", "2", "--iters", "5", "--json", "--report-memory")
    try:
        doc = json.loads(so)
    except ValueError:
        doc = None
    check(rc == 0 and doc is not None, "bench --json prints one JSON object", so + se)
    if doc:
        r = doc["results"][0]
        check(doc["weight_bytes"] == TABLE.nbytes and r["batch"] == 2 and r["threads"] == 1 and
              r["p50_us"] > 0 and r["throughput_per_s"] > 0 and "memory" in doc and
              doc["memory"][0]["peak_rss_bytes"] >= doc["memory"][0]["rss_before_bytes"] > 0,
              "bench --json fields", so)
    rc, _, se = run("bench", model, "--iters", "5", "--input", "nope=x.npy")
    check(one_line_error(rc, se, "unknown input 'nope'"), "bench unknown --input name", se)


def check_fixture(tmp, model_dir, case):
    """`flywheel infer` on a committed fixture case against its expected outputs."""
    case_dir = os.path.join(model_dir, case)
    if not os.path.isdir(case_dir):
        print(f"skip  {case_dir} not present")
        return
    model = os.path.join(model_dir, "model.onnx")
    what = f"{model_dir}/{case}"
    out = os.path.join(tmp, what.replace("/", "_"))
    rc, so, se = run("infer", model, "--input-dir", case_dir, "--output-dir", out)
    check(rc == 0, f"{what}: infer --input-dir succeeds", se)
    written = [l.split("wrote ", 1)[1] for l in so.splitlines() if l.strip().startswith("wrote ")]
    expected = sorted(f for f in os.listdir(case_dir) if f.startswith("output_"))
    check(rc != 0 or len(written) == len(expected), f"{what}: one file per output", so)
    for k, path in enumerate(written):
        want = np.load(os.path.join(case_dir, f"output_{k}.npy"))
        check(close(np.load(path), want), f"{what}: output {k} matches the reference")


def test_fixtures(tmp):
    check_fixture(tmp, "tests/fixtures/ops/add_dynamic", "n5")
    # The example model of `make serve`; needs the Gemm kernel.
    check_fixture(tmp, "tests/fixtures/models/mlp_ranker", "batch4")


def test_tree_models(tmp):
    """XGBoost model files run through infer and bench like ONNX ones (tree engine)."""
    fixture = "tests/fixtures/trees/binary"
    for name in ("model.json", "model.ubj"):
        out = os.path.join(tmp, "trees-" + name)
        rc, so, se = run("infer", os.path.join(fixture, name), "--input",
                         "input__0=" + os.path.join(fixture, "x.npy"), "--output-dir", out)
        check(rc == 0 and "output__0: FP32 [" in so, f"infer {name} succeeds", se)
        if rc == 0:
            got = np.load(os.path.join(out, "output__0.npy")).reshape(-1)
            want = np.load(os.path.join(fixture, "pred.npy")).reshape(-1)
            check(np.allclose(got, want, rtol=1e-6, atol=1e-7), f"infer {name} equals XGBoost")
    rc, so, se = run("bench", os.path.join(fixture, "model.ubj"), "--batch", "1,16", "--iters", "5",
                     "--json")
    doc = json.loads(so) if rc == 0 else None
    check(doc is not None and len(doc.get("results", [])) == 2, "bench runs a tree model", so + se)


def main():
    global FLYWHEEL
    if len(sys.argv) != 2:
        sys.exit("usage: cli_test.py PATH/TO/flywheel")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    rc, so, _ = run("--version")
    check(rc == 0 and so.startswith("flywheel "), "--version", so)
    rc, so, _ = run("--help")
    check(rc == 0 and "infer" in so and "bench" in so, "--help lists the commands", so)
    with tempfile.TemporaryDirectory() as tmp:
        model = test_infer_tiny(tmp)
        test_bench(model)
        test_fixtures(tmp)
        test_tree_models(tmp)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
