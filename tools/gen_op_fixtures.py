#!/usr/bin/python3
"""Generates the per-operator ONNX fixtures under tests/fixtures/ops/.

Each fixture is a small graph (usually one node) built with onnx.helper, with one or more
cases of input data from fixed seeds.  Reference outputs come from the NumPy interpreter in
_fixture_util.py (float64 arithmetic, rounded to the declared type), which reads the node
attributes exactly as the engine must.  Where torch has the same operator, a fixture also
carries an independent torch (float64) computation that the reference must agree with, so a
misreading of an attribute in the interpreter is caught here rather than blamed on the engine.

Run:  /usr/bin/python3 tools/gen_op_fixtures.py [--check-only]
"""

import argparse
import os
import sys
import zlib

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _fixture_util as fu  # noqa: E402

OUT_DIR = os.path.join(fu.FIXTURES_DIR, "ops")

F32, F64, I64, I32, U8, BOOL = np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

SPECS = []


class Spec:
    def __init__(self, name, nodes, inputs, cases, inits=None, opset=17, check=None,
                 outputs=None):
        self.name = name
        self.nodes = nodes if isinstance(nodes, list) else [nodes]
        self.inputs = inputs            # [(name, np dtype, shape)]
        self.cases = cases              # {case: [arrays]}
        self.inits = inits or {}        # {name: array}
        self.opset = opset
        self.check = check              # fn(*inputs) -> [expected arrays] (independent)
        self.outputs = outputs or [o for o in self.nodes[-1].output if o]


def fx(name, nodes, inputs, cases, **kw):
    if not isinstance(cases, dict):
        cases = {"case0": cases}
    SPECS.append(Spec(name, nodes, inputs, cases, **kw))


def rng_for(tag):
    # Seeded by the group name so that data does not depend on the order groups run in.
    return np.random.default_rng(zlib.crc32(tag.encode()))


def uni(r, shape, lo=-1.0, hi=1.0, dtype=F32):
    return r.uniform(lo, hi, size=shape).astype(dtype)


def away(r, shape, lo=0.1, hi=2.0, dtype=F32):
    """Values with |v| in [lo, hi] and random sign: away from 0 (Relu, Abs, divisors)."""
    mag = r.uniform(lo, hi, size=shape)
    sign = np.where(r.random(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(dtype)


def ints(r, shape, lo, hi, dtype=I64):
    return r.integers(lo, hi, size=shape).astype(dtype)


def distinct(r, shape, dtype=F32):
    """Distinct values (no ties) for TopK / ArgMax: a shuffled, jittered grid."""
    n = int(np.prod(shape))
    vals = (r.permutation(n) + r.uniform(0.1, 0.4, size=n)) / 4.0 - n / 8.0
    return vals.reshape(shape).astype(dtype)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=F64))


def tnp(t, dtype=F32):
    return t.detach().numpy().astype(dtype)


# ============================================================================================
# Elementwise
# ============================================================================================


def gen_binary():
    r = rng_for("binary")
    X = lambda *s: uni(r, s)  # noqa: E731
    for op, fn in [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply)]:
        low = op.lower()
        tchk = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul}[op]
        chk = (lambda f: lambda a, b: [tnp(f(t64(a), t64(b)))])(tchk)
        fx(f"{low}_same_shape", node(op, ["A", "B"], ["C"]),
           [("A", F32, [2, 3, 4]), ("B", F32, [2, 3, 4])], [X(2, 3, 4), X(2, 3, 4)], check=chk)
        fx(f"{low}_broadcast_3d_1d", node(op, ["A", "B"], ["C"]),
           [("A", F32, [2, 3, 4]), ("B", F32, [4])], [X(2, 3, 4), X(4)], check=chk)
        fx(f"{low}_broadcast_2x1x4_3x1", node(op, ["A", "B"], ["C"]),
           [("A", F32, [2, 1, 4]), ("B", F32, [3, 1])], [X(2, 1, 4), X(3, 1)], check=chk)
        fx(f"{low}_scalar_tensor", node(op, ["A", "B"], ["C"]),
           [("A", F32, []), ("B", F32, [2, 3])], [X(), X(2, 3)], check=chk)
        fx(f"{low}_tensor_scalar", node(op, ["A", "B"], ["C"]),
           [("A", F32, [2, 3]), ("B", F32, [])], [X(2, 3), X()], check=chk)
        fx(f"{low}_1_2d", node(op, ["A", "B"], ["C"]),
           [("A", F32, [1]), ("B", F32, [2, 3])], [X(1), X(2, 3)], check=chk)
        fx(f"{low}_dynamic", node(op, ["A", "B"], ["C"]),
           [("A", F32, ["N", 4]), ("B", F32, [4])],
           {"n1": [X(1, 4), X(4)], "n5": [X(5, 4), X(4)], "n0": [X(0, 4), X(4)]}, check=chk)
        fx(f"{low}_int64", node(op, ["A", "B"], ["C"]),
           [("A", I64, [2, 3]), ("B", I64, [3])],
           [ints(r, [2, 3], -50, 50), ints(r, [3], -50, 50)],
           check=(lambda f: lambda a, b: [f(a, b)])(fn))
        w = X(3)
        fx(f"{low}_initializer", node(op, ["A", "W"], ["C"]),
           [("A", F32, ["N", 3])], {"n2": [X(2, 3)], "n3": [X(3, 3)]},
           inits={"W": w}, check=(lambda f, w: lambda a: [f(a, w)])(fn, w))
    fx("add_dynamic_both", node("Add", ["A", "B"], ["C"]),
       [("A", F32, ["N", 1, "D"]), ("B", F32, ["M", "D"])],
       {"n2_m3_d4": [X(2, 1, 4), X(3, 4)], "n1_m1_d5": [X(1, 1, 5), X(1, 5)]},
       check=lambda a, b: [a + b])
    fx("add_int32", node("Add", ["A", "B"], ["C"]),
       [("A", I32, [2, 3]), ("B", I32, [2, 3])],
       [ints(r, [2, 3], -9, 9, I32), ints(r, [2, 3], -9, 9, I32)], check=lambda a, b: [a + b])

    # Div: denominators kept away from zero.
    chk = lambda a, b: [tnp(t64(a) / t64(b))]  # noqa: E731
    D = lambda *s: away(r, s, 0.3, 2.0)  # noqa: E731
    fx("div_same_shape", node("Div", ["A", "B"], ["C"]),
       [("A", F32, [2, 3, 4]), ("B", F32, [2, 3, 4])], [X(2, 3, 4), D(2, 3, 4)], check=chk)
    fx("div_broadcast_3d_1d", node("Div", ["A", "B"], ["C"]),
       [("A", F32, [2, 3, 4]), ("B", F32, [4])], [X(2, 3, 4), D(4)], check=chk)
    fx("div_broadcast_2x1x4_3x1", node("Div", ["A", "B"], ["C"]),
       [("A", F32, [2, 1, 4]), ("B", F32, [3, 1])], [X(2, 1, 4), D(3, 1)], check=chk)
    fx("div_scalar_tensor", node("Div", ["A", "B"], ["C"]),
       [("A", F32, []), ("B", F32, [2, 3])], [X(), D(2, 3)], check=chk)
    fx("div_tensor_scalar", node("Div", ["A", "B"], ["C"]),
       [("A", F32, [2, 3]), ("B", F32, [])], [X(2, 3), D()], check=chk)
    fx("div_1_2d", node("Div", ["A", "B"], ["C"]),
       [("A", F32, [1]), ("B", F32, [2, 3])], [X(1), D(2, 3)], check=chk)
    fx("div_dynamic", node("Div", ["A", "B"], ["C"]),
       [("A", F32, ["N", 4]), ("B", F32, [4])],
       {"n1": [X(1, 4), D(4)], "n6": [X(6, 4), D(4)]}, check=chk)
    # Integer division: operands positive so truncation and floor agree.
    fx("div_int64", node("Div", ["A", "B"], ["C"]),
       [("A", I64, [2, 4]), ("B", I64, [4])],
       [ints(r, [2, 4], 0, 100), ints(r, [4], 1, 9)], check=lambda a, b: [a // b])

    # Pow: bases positive.
    chk = lambda a, b: [tnp(torch.pow(t64(a), t64(b)))]  # noqa: E731
    P = lambda *s: uni(r, s, 0.2, 3.0)  # noqa: E731
    fx("pow_same_shape", node("Pow", ["A", "B"], ["C"]),
       [("A", F32, [2, 3, 4]), ("B", F32, [2, 3, 4])], [P(2, 3, 4), uni(r, [2, 3, 4], -2, 3)],
       check=chk)
    fx("pow_broadcast_3d_1d", node("Pow", ["A", "B"], ["C"]),
       [("A", F32, [2, 3, 4]), ("B", F32, [4])], [P(2, 3, 4), uni(r, [4], -2, 3)], check=chk)
    fx("pow_scalar_exponent", node("Pow", ["A", "B"], ["C"]),
       [("A", F32, [3, 5])], [away(r, [3, 5], 0.1, 3.0)], inits={"B": np.array(2.0, F32)},
       check=lambda a: [tnp(t64(a) ** 2)])
    fx("pow_scalar_base", node("Pow", ["A", "B"], ["C"]),
       [("A", F32, []), ("B", F32, [2, 3])], [np.array(1.7, F32), uni(r, [2, 3], -2, 2)],
       check=chk)
    fx("pow_int64_exponent", node("Pow", ["A", "B"], ["C"]),
       [("A", F32, [2, 3]), ("B", I64, [3])], [away(r, [2, 3], 0.2, 2.0), np.array([2, 3, -1])],
       check=lambda a, b: [tnp(torch.pow(t64(a), t64(b)))])


def gen_unary():
    r = rng_for("unary")
    shp = [3, 4, 5]

    def un(name, op, data, ref, **attrs):
        fx(name, node(op, ["X"], ["Y"], **attrs), [("X", data.dtype.type, list(data.shape))],
           [data], check=lambda x: [tnp(ref(t64(x)), x.dtype)])

    un("sqrt", "Sqrt", uni(r, shp, 0.01, 9.0), torch.sqrt)
    un("exp", "Exp", uni(r, shp, -4.0, 4.0), torch.exp)
    un("log", "Log", uni(r, shp, 0.05, 20.0), torch.log)
    un("neg", "Neg", uni(r, shp), torch.neg)
    un("abs", "Abs", away(r, shp), torch.abs)
    un("erf", "Erf", uni(r, shp, -3.0, 3.0), torch.erf)
    un("tanh", "Tanh", uni(r, shp, -4.0, 4.0), torch.tanh)
    un("sigmoid", "Sigmoid", uni(r, shp, -8.0, 8.0), torch.sigmoid)
    un("relu", "Relu", away(r, shp, 0.01, 2.0), torch.relu)
    un("leakyrelu_default", "LeakyRelu", away(r, shp, 0.01, 2.0),
       lambda t: F.leaky_relu(t, 0.01))
    un("leakyrelu_alpha", "LeakyRelu", away(r, shp, 0.01, 2.0),
       lambda t: F.leaky_relu(t, 0.2), alpha=0.2)
    un("elu_default", "Elu", away(r, shp, 0.01, 3.0), lambda t: F.elu(t, 1.0))
    un("elu_alpha", "Elu", away(r, shp, 0.01, 3.0), lambda t: F.elu(t, 0.5), alpha=0.5)
    un("hardsigmoid_default", "HardSigmoid", uni(r, shp, -4.0, 4.0),
       lambda t: torch.clamp(0.2 * t + 0.5, 0, 1))
    un("hardsigmoid_alpha_beta", "HardSigmoid", uni(r, shp, -4.0, 4.0),
       lambda t: torch.clamp(0.25 * t + 0.4, 0, 1), alpha=0.25, beta=0.4)

    int_data = ints(r, [2, 5], -20, 20)
    fx("neg_int64", node("Neg", ["X"], ["Y"]), [("X", I64, [2, 5])], [int_data],
       check=lambda x: [-x])
    fx("abs_int64", node("Abs", ["X"], ["Y"]), [("X", I64, [2, 5])], [int_data],
       check=lambda x: [np.abs(x)])
    fx("relu_dynamic", node("Relu", ["X"], ["Y"]), [("X", F32, ["N", 3, "W"])],
       {"n1_w4": [away(r, [1, 3, 4])], "n3_w7": [away(r, [3, 3, 7])]},
       check=lambda x: [np.maximum(x, 0)])
    fx("sigmoid_dynamic", node("Sigmoid", ["X"], ["Y"]), [("X", F32, ["N", 8])],
       {"n1": [uni(r, [1, 8], -6, 6)], "n4": [uni(r, [4, 8], -6, 6)]},
       check=lambda x: [tnp(torch.sigmoid(t64(x)))])

    # Clip (opset >= 11: bounds are optional inputs).
    x = uni(r, [3, 8], -2.0, 2.0)
    lo, hi = np.array(-0.5, F32), np.array(0.75, F32)
    fx("clip_min_max", node("Clip", ["X", "lo", "hi"], ["Y"]), [("X", F32, [3, 8])], [x],
       inits={"lo": lo, "hi": hi}, check=lambda x: [np.clip(x, lo, hi)])
    fx("clip_min_only", node("Clip", ["X", "lo"], ["Y"]), [("X", F32, [3, 8])], [x],
       inits={"lo": lo}, check=lambda x: [np.maximum(x, lo)])
    fx("clip_max_only", node("Clip", ["X", "", "hi"], ["Y"]), [("X", F32, [3, 8])], [x],
       inits={"hi": hi}, check=lambda x: [np.minimum(x, hi)])
    fx("clip_no_bounds", node("Clip", ["X"], ["Y"]), [("X", F32, [3, 8])], [x],
       check=lambda x: [x])
    fx("clip_relu6", node("Clip", ["X", "lo", "hi"], ["Y"]), [("X", F32, [2, 3, 4])],
       [uni(r, [2, 3, 4], -3.0, 9.0)],
       inits={"lo": np.array(0.0, F32), "hi": np.array(6.0, F32)},
       check=lambda x: [np.clip(x, 0, 6)])
    fx("clip_bounds_as_inputs", node("Clip", ["X", "lo", "hi"], ["Y"]),
       [("X", F32, [3, 8]), ("lo", F32, []), ("hi", F32, [])],
       {"case0": [x, lo, hi], "case1": [x, np.array(-1.5, F32), np.array(0.25, F32)]},
       check=lambda x, a, b: [np.clip(x, a, b)])
    fx("clip_int64", node("Clip", ["X", "lo", "hi"], ["Y"]), [("X", I64, [10])],
       [np.arange(-5, 5, dtype=I64)],
       inits={"lo": np.array(-2, I64), "hi": np.array(3, I64)},
       check=lambda x: [np.clip(x, -2, 3)])


def gen_softmax():
    r = rng_for("softmax")
    fx("softmax_default_axis", node("Softmax", ["X"], ["Y"]), [("X", F32, [2, 3, 5])],
       [uni(r, [2, 3, 5], -3, 3)], check=lambda x: [tnp(torch.softmax(t64(x), -1))])
    fx("softmax_axis1", node("Softmax", ["X"], ["Y"], axis=1), [("X", F32, [2, 3, 5])],
       [uni(r, [2, 3, 5], -3, 3)], check=lambda x: [tnp(torch.softmax(t64(x), 1))])
    fx("softmax_axis0", node("Softmax", ["X"], ["Y"], axis=0), [("X", F32, [4, 6])],
       [uni(r, [4, 6], -3, 3)], check=lambda x: [tnp(torch.softmax(t64(x), 0))])
    # Logits far from zero: a kernel that does not subtract the max overflows exp.
    fx("softmax_large_values", node("Softmax", ["X"], ["Y"]), [("X", F32, [3, 7])],
       [uni(r, [3, 7], 80, 120)], check=lambda x: [tnp(torch.softmax(t64(x), -1))])
    fx("softmax_dynamic", node("Softmax", ["X"], ["Y"]), [("X", F32, ["N", "S"])],
       {"n1_s10": [uni(r, [1, 10], -3, 3)], "n4_s3": [uni(r, [4, 3], -3, 3)]},
       check=lambda x: [tnp(torch.softmax(t64(x), -1))])
    fx("softmax_4d_attention", node("Softmax", ["X"], ["Y"], axis=-1), [("X", F32, [2, 2, 5, 5])],
       [uni(r, [2, 2, 5, 5], -4, 4)], check=lambda x: [tnp(torch.softmax(t64(x), -1))])
    fx("softmax_opset13", node("Softmax", ["X"], ["Y"], axis=1), [("X", F32, [2, 3, 4])],
       [uni(r, [2, 3, 4], -3, 3)], opset=13, check=lambda x: [tnp(torch.softmax(t64(x), 1))])
    fx("logsoftmax_default_axis", node("LogSoftmax", ["X"], ["Y"]), [("X", F32, [2, 3, 5])],
       [uni(r, [2, 3, 5], -3, 3)], check=lambda x: [tnp(torch.log_softmax(t64(x), -1))])
    fx("logsoftmax_axis0", node("LogSoftmax", ["X"], ["Y"], axis=0), [("X", F32, [4, 6])],
       [uni(r, [4, 6], -3, 3)], check=lambda x: [tnp(torch.log_softmax(t64(x), 0))])
    fx("logsoftmax_large_values", node("LogSoftmax", ["X"], ["Y"]), [("X", F32, [3, 7])],
       [uni(r, [3, 7], -120, 120)], check=lambda x: [tnp(torch.log_softmax(t64(x), -1))])


# ============================================================================================
# MatMul, Gemm
# ============================================================================================


def gen_matmul():
    r = rng_for("matmul")
    chk = lambda a, b: [tnp(torch.matmul(t64(a), t64(b)))]  # noqa: E731

    def mm(name, sa, sb, **kw):
        fx(name, node("MatMul", ["A", "B"], ["Y"]), [("A", F32, sa), ("B", F32, sb)],
           [uni(r, sa), uni(r, sb)], check=chk, **kw)

    mm("matmul_2d", [3, 4], [4, 5])
    mm("matmul_batched_3d", [2, 3, 4], [2, 4, 5])
    mm("matmul_batched_4d", [2, 3, 4, 5], [2, 3, 5, 6])
    mm("matmul_broadcast_4d_3d", [2, 1, 3, 4], [3, 4, 5])
    mm("matmul_broadcast_3d_2d", [2, 3, 4], [4, 5])
    mm("matmul_broadcast_2d_3d", [3, 4], [2, 4, 5])
    mm("matmul_broadcast_batch1", [1, 3, 4], [4, 4, 2])
    mm("matmul_1d_2d", [4], [4, 5])
    mm("matmul_2d_1d", [3, 4], [4])
    mm("matmul_1d_1d", [6], [6])
    mm("matmul_1d_3d", [4], [2, 4, 3])
    mm("matmul_3d_1d", [2, 3, 4], [4])
    w = uni(r, [8, 6])
    fx("matmul_dynamic_weight", node("MatMul", ["A", "W"], ["Y"]), [("A", F32, ["N", "S", 8])],
       {"n1_s1": [uni(r, [1, 1, 8])], "n2_s5": [uni(r, [2, 5, 8])]}, inits={"W": w},
       check=lambda a: [tnp(t64(a) @ t64(w))])
    fx("matmul_int64", node("MatMul", ["A", "B"], ["Y"]), [("A", I64, [2, 3]), ("B", I64, [3, 2])],
       [ints(r, [2, 3], -5, 5), ints(r, [3, 2], -5, 5)], check=lambda a, b: [a @ b])
    # Large enough to go through a blocked kernel; inner dim 64 keeps float32 error small.
    mm("matmul_2d_larger", [33, 64], [64, 17])


def gen_gemm():
    r = rng_for("gemm")

    def ref(a, b, c, ta, tb, alpha, beta):
        a, b = t64(a), t64(b)
        a = a.T if ta else a
        b = b.T if tb else b
        y = alpha * (a @ b)
        if c is not None:
            y = y + beta * t64(c)
        return [tnp(y)]

    def gemm(name, c_shape, ta=0, tb=0, alpha=1.0, beta=1.0):
        sa = [4, 3] if ta else [3, 4]
        sb = [5, 4] if tb else [4, 5]
        attrs = {}
        if ta:
            attrs["transA"] = 1
        if tb:
            attrs["transB"] = 1
        if alpha != 1.0:
            attrs["alpha"] = alpha
        if beta != 1.0:
            attrs["beta"] = beta
        ins = [("A", F32, sa), ("B", F32, sb)]
        data = [uni(r, sa), uni(r, sb)]
        names = ["A", "B"]
        if c_shape is not None:
            ins.append(("C", F32, c_shape))
            data.append(uni(r, c_shape))
            names.append("C")
        fx(name, node("Gemm", names, ["Y"], **attrs), ins, data,
           check=lambda a, b, c=None: ref(a, b, c, ta, tb, alpha, beta))

    gemm("gemm_bias_vector", [5])
    gemm("gemm_bias_row", [1, 5])
    gemm("gemm_bias_column", [3, 1])
    gemm("gemm_bias_full", [3, 5])
    gemm("gemm_bias_scalar", [])
    gemm("gemm_no_bias", None)
    gemm("gemm_transA", [5], ta=1)
    gemm("gemm_transB", [5], tb=1)
    gemm("gemm_transA_transB", [1, 5], ta=1, tb=1)
    gemm("gemm_alpha_beta", [5], alpha=0.5, beta=2.0)
    gemm("gemm_alpha_no_bias", None, alpha=-1.5, tb=1)
    # The torch Linear export: weight [out, in] initializer with transB=1, bias [out].
    w, b = uni(r, [6, 8]), uni(r, [6])
    fx("gemm_linear_dynamic", node("Gemm", ["X", "W", "b"], ["Y"], transB=1),
       [("X", F32, ["N", 8])], {"n1": [uni(r, [1, 8])], "n4": [uni(r, [4, 8])]},
       inits={"W": w, "b": b}, check=lambda x: [tnp(F.linear(t64(x), t64(w), t64(b)))])


# ============================================================================================
# Convolution and pooling
# ============================================================================================


def _torch_conv(x, w, b, strides, pads, dil, groups):
    """pads: ONNX order [h_begin, w_begin, h_end, w_end] (or 1-d [b, e])."""
    nsp = x.ndim - 2
    tp = []
    for i in reversed(range(nsp)):
        tp += [pads[i], pads[i + nsp]]
    xp = F.pad(t64(x), tp)
    fn = F.conv2d if nsp == 2 else F.conv1d
    return [tnp(fn(xp, t64(w), None if b is None else t64(b), strides, 0, dil, groups))]


def gen_conv():
    r = rng_for("conv")

    def conv(name, xs, ws, bias=True, strides=None, pads=None, dil=None, group=1, auto_pad=None,
             check_pads=None, dyn=None):
        nsp = len(ws) - 2
        attrs = {"kernel_shape": ws[2:]}
        if strides:
            attrs["strides"] = strides
        if pads:
            attrs["pads"] = pads
        if dil:
            attrs["dilations"] = dil
        if group != 1:
            attrs["group"] = group
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        w = uni(r, ws, -0.5, 0.5)
        b = uni(r, [ws[0]]) if bias else None
        inits = {"W": w}
        names = ["X", "W"]
        if bias:
            inits["B"] = b
            names.append("B")
        cp = check_pads or pads or [0] * (2 * nsp)
        chk = lambda x: _torch_conv(x, w, b, strides or 1, cp, dil or 1, group)  # noqa: E731
        if dyn:
            decl, shapes = dyn
            cases = {k: [uni(r, s)] for k, s in shapes.items()}
        else:
            decl, cases = xs, [uni(r, xs)]
        fx(name, node("Conv", names, ["Y"], **attrs), [("X", F32, decl)], cases, inits=inits,
           check=chk)

    conv("conv_basic", [1, 2, 6, 6], [3, 2, 3, 3])
    conv("conv_no_bias", [2, 2, 5, 5], [3, 2, 3, 3], bias=False)
    conv("conv_pads", [1, 2, 6, 6], [3, 2, 3, 3], pads=[1, 1, 1, 1])
    conv("conv_asymmetric_pads", [1, 2, 5, 6], [3, 2, 3, 3], pads=[0, 1, 2, 0])
    conv("conv_strides", [1, 2, 7, 7], [4, 2, 3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    conv("conv_strides_uneven", [1, 2, 8, 9], [4, 2, 3, 2], strides=[3, 2])
    conv("conv_dilation", [1, 2, 8, 8], [3, 2, 3, 3], dil=[2, 2], pads=[2, 2, 2, 2])
    conv("conv_groups", [1, 4, 5, 5], [6, 2, 3, 3], group=2, pads=[1, 1, 1, 1])
    conv("conv_groups_dilation", [2, 6, 9, 9], [6, 2, 3, 3], group=3, dil=[2, 1],
         strides=[1, 2], pads=[1, 0, 1, 1])
    conv("conv_depthwise", [1, 4, 6, 6], [4, 1, 3, 3], group=4, pads=[1, 1, 1, 1])
    conv("conv_depthwise_multiplier", [1, 3, 6, 6], [6, 1, 3, 3], group=3, strides=[2, 2],
         pads=[1, 1, 1, 1])
    conv("conv_1x1", [2, 8, 4, 4], [5, 8, 1, 1])
    conv("conv_1x1_stride2", [1, 4, 6, 6], [6, 4, 1, 1], strides=[2, 2])
    conv("conv_rect_kernel", [1, 2, 6, 9], [3, 2, 1, 3], strides=[1, 2], pads=[0, 1, 0, 1])
    # SAME_UPPER with stride 2 on an even size needs one pad row/col, at the end.
    conv("conv_auto_pad_same_upper", [1, 2, 6, 6], [3, 2, 3, 3], strides=[2, 2],
         auto_pad="SAME_UPPER", check_pads=[0, 0, 1, 1])
    conv("conv_auto_pad_same_lower", [1, 2, 6, 6], [3, 2, 3, 3], strides=[2, 2],
         auto_pad="SAME_LOWER", check_pads=[1, 1, 0, 0])
    conv("conv_auto_pad_same_upper_stride1", [1, 2, 5, 5], [3, 2, 4, 4],
         auto_pad="SAME_UPPER", check_pads=[1, 1, 2, 2])
    conv("conv_auto_pad_valid", [1, 2, 7, 7], [3, 2, 3, 3], strides=[2, 2],
         auto_pad="VALID", check_pads=[0, 0, 0, 0])
    conv("conv_dynamic_batch", None, [4, 3, 3, 3], pads=[1, 1, 1, 1],
         dyn=(["N", 3, 8, 8], {"n1": [1, 3, 8, 8], "n3": [3, 3, 8, 8]}))
    conv("conv_dynamic_spatial", None, [4, 2, 3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
         dyn=([1, 2, "H", "W"], {"h5_w7": [1, 2, 5, 7], "h8_w8": [1, 2, 8, 8]}))
    conv("conv_1d", [2, 3, 10], [4, 3, 3], strides=[2], pads=[1, 1])
    conv("conv_1d_dilation_groups", [1, 4, 12], [4, 2, 3], dil=[2], group=2, pads=[2, 1])


def gen_conv_transpose():
    r = rng_for("conv_transpose")

    def convt(name, xs, ws, bias=True, strides=None, pads=None, dil=None, group=1,
              out_pad=None):
        nsp = len(xs) - 2
        attrs = {"kernel_shape": ws[2:]}
        for key, v in [("strides", strides), ("pads", pads), ("dilations", dil),
                       ("output_padding", out_pad)]:
            if v:
                attrs[key] = v
        if group != 1:
            attrs["group"] = group
        w = uni(r, ws, -0.5, 0.5)
        b = uni(r, [ws[1] * group]) if bias else None
        inits = {"W": w}
        names = ["X", "W"]
        if bias:
            inits["B"] = b
            names.append("B")
        p = pads or [0] * (2 * nsp)

        def chk(x):
            # torch pads symmetrically; run unpadded then crop each side as ONNX asks.
            y = F.conv_transpose2d(t64(x), t64(w), None, strides or 1, 0, out_pad or 0, group,
                                   dil or 1)
            h, wd = y.shape[2:]
            y = y[:, :, p[0]:h - p[2], p[1]:wd - p[3]]
            if b is not None:
                y = y + t64(b).reshape(1, -1, 1, 1)
            return [tnp(y)]

        fx(name, node("ConvTranspose", names, ["Y"], **attrs), [("X", F32, xs)], [uni(r, xs)],
           inits=inits, check=chk)

    convt("convtranspose_basic", [1, 2, 4, 4], [2, 3, 3, 3])
    convt("convtranspose_no_bias", [2, 3, 3, 3], [3, 2, 2, 2], bias=False)
    convt("convtranspose_strides", [1, 2, 4, 4], [2, 3, 3, 3], strides=[2, 2])
    convt("convtranspose_pads", [1, 2, 4, 4], [2, 3, 3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    convt("convtranspose_asymmetric_pads", [1, 2, 4, 5], [2, 3, 3, 3], strides=[2, 1],
          pads=[0, 1, 1, 0])
    convt("convtranspose_output_padding", [1, 2, 4, 4], [2, 3, 3, 3], strides=[2, 2],
          pads=[1, 1, 1, 1], out_pad=[1, 1])
    convt("convtranspose_output_padding_rect", [1, 2, 3, 4], [2, 2, 2, 3], strides=[3, 2],
          out_pad=[2, 1])
    convt("convtranspose_groups", [1, 4, 3, 3], [4, 2, 3, 3], group=2, strides=[2, 2],
          pads=[1, 1, 1, 1])
    convt("convtranspose_dilation", [1, 2, 4, 4], [2, 2, 3, 3], dil=[2, 2])
    convt("convtranspose_upsample_2x", [1, 4, 4, 4], [4, 2, 4, 4], strides=[2, 2],
          pads=[1, 1, 1, 1])


def gen_pool():
    r = rng_for("pool")

    def maxpool(name, xs, k, strides=None, pads=None, dil=None, ceil=0, auto_pad=None,
                check_pads=None, dyn=None, data=None):
        attrs = {"kernel_shape": k}
        for key, v in [("strides", strides), ("pads", pads), ("dilations", dil)]:
            if v:
                attrs[key] = v
        if ceil:
            attrs["ceil_mode"] = 1
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        nsp = len(k)
        cp = check_pads or pads or [0] * (2 * nsp)

        def chk(x):
            tp = []
            for i in reversed(range(nsp)):
                tp += [cp[i], cp[i + nsp]]
            xp = F.pad(t64(x), tp, value=-np.inf)
            fn = F.max_pool2d if nsp == 2 else F.max_pool1d
            return [tnp(fn(xp, k, strides or 1, 0, dil or 1, ceil_mode=bool(ceil)))]

        if dyn:
            decl, cases = dyn[0], {c: [uni(r, s)] for c, s in dyn[1].items()}
        else:
            decl, cases = xs, [uni(r, xs) if data is None else data]
        fx(name, node("MaxPool", ["X"], ["Y"], **attrs), [("X", F32, decl)], cases, check=chk)

    maxpool("maxpool_2x2_stride2", [1, 3, 6, 6], [2, 2], strides=[2, 2])
    maxpool("maxpool_3x3_stride1_pads", [1, 2, 5, 5], [3, 3], pads=[1, 1, 1, 1])
    maxpool("maxpool_3x3_stride2_pads", [2, 2, 7, 7], [3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    maxpool("maxpool_asymmetric_pads", [1, 2, 6, 5], [2, 3], strides=[2, 1], pads=[0, 1, 1, 1])
    maxpool("maxpool_ceil_mode", [1, 2, 7, 7], [2, 2], strides=[2, 2], ceil=1)
    maxpool("maxpool_ceil_mode_3x3", [1, 2, 8, 8], [3, 3], strides=[2, 2], ceil=1)
    maxpool("maxpool_dilation", [1, 2, 7, 7], [2, 2], dil=[2, 2])
    maxpool("maxpool_same_upper", [1, 2, 6, 6], [3, 3], strides=[2, 2], auto_pad="SAME_UPPER",
            check_pads=[0, 0, 1, 1])
    maxpool("maxpool_same_lower", [1, 2, 6, 6], [3, 3], strides=[2, 2], auto_pad="SAME_LOWER",
            check_pads=[1, 1, 0, 0])
    # Values all negative: padding must act as -inf, not 0.
    maxpool("maxpool_all_negative_pads", [1, 1, 4, 4], [3, 3], pads=[1, 1, 1, 1],
            data=uni(r, [1, 1, 4, 4], -3.0, -0.5))
    maxpool("maxpool_dynamic", None, [2, 2], strides=[2, 2],
            dyn=(["N", 2, "H", "W"], {"n1_h4_w6": [1, 2, 4, 6], "n2_h8_w8": [2, 2, 8, 8]}))
    maxpool("maxpool_1d", [1, 2, 9], [3], strides=[2])

    def avgpool(name, xs, k, strides=None, pads=None, ceil=0, cip=0, auto_pad=None,
                check_pads=None, dyn=None):
        attrs = {"kernel_shape": k}
        for key, v in [("strides", strides), ("pads", pads)]:
            if v:
                attrs[key] = v
        if ceil:
            attrs["ceil_mode"] = 1
        if cip:
            attrs["count_include_pad"] = 1
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        cp = check_pads or pads or [0, 0, 0, 0]
        symmetric = cp[0] == cp[2] and cp[1] == cp[3]

        def chk(x):
            if symmetric:
                return [tnp(F.avg_pool2d(t64(x), k, strides or 1, cp[:2], bool(ceil),
                                         bool(cip)))]
            # Asymmetric pads: pad explicitly; divide by the count of real elements.
            tp = [cp[1], cp[3], cp[0], cp[2]]
            xp = F.pad(t64(x), tp)
            if cip:
                return [tnp(F.avg_pool2d(xp, k, strides or 1, 0, bool(ceil), True))]
            ones = F.pad(torch.ones_like(t64(x)), tp)
            s = F.avg_pool2d(xp, k, strides or 1, 0, bool(ceil), True)
            n = F.avg_pool2d(ones, k, strides or 1, 0, bool(ceil), True)
            return [tnp(s / n)]

        if dyn:
            decl, cases = dyn[0], {c: [uni(r, s)] for c, s in dyn[1].items()}
        else:
            decl, cases = xs, [uni(r, xs)]
        fx(name, node("AveragePool", ["X"], ["Y"], **attrs), [("X", F32, decl)], cases,
           check=chk)

    avgpool("averagepool_2x2_stride2", [1, 3, 6, 6], [2, 2], strides=[2, 2])
    avgpool("averagepool_3x3_pads_count_include_pad", [1, 2, 5, 5], [3, 3], pads=[1, 1, 1, 1],
            cip=1)
    avgpool("averagepool_3x3_pads_exclude_pad", [1, 2, 5, 5], [3, 3], pads=[1, 1, 1, 1])
    avgpool("averagepool_stride2_pads_count_include_pad", [1, 2, 7, 7], [3, 3], strides=[2, 2],
            pads=[1, 1, 1, 1], cip=1)
    avgpool("averagepool_asymmetric_pads_exclude_pad", [1, 2, 6, 5], [3, 2], strides=[2, 1],
            pads=[1, 0, 0, 1])
    avgpool("averagepool_asymmetric_pads_count_include_pad", [1, 2, 6, 5], [3, 2],
            strides=[2, 1], pads=[1, 0, 0, 1], cip=1)
    avgpool("averagepool_ceil_mode", [1, 2, 7, 7], [2, 2], strides=[2, 2], ceil=1)
    # ceil_mode with pads: the last window runs past the padded input.  Divisors follow
    # ONNX Runtime and torch: count_include_pad counts only positions inside the padded extent.
    avgpool("averagepool_ceil_mode_pads_exclude_pad", [1, 2, 6, 6], [3, 3], strides=[2, 2],
            pads=[1, 1, 1, 1], ceil=1)
    avgpool("averagepool_ceil_mode_pads_count_include_pad", [1, 2, 6, 6], [3, 3],
            strides=[2, 2], pads=[1, 1, 1, 1], ceil=1, cip=1)
    avgpool("averagepool_same_upper", [1, 2, 6, 6], [3, 3], strides=[2, 2],
            auto_pad="SAME_UPPER", check_pads=[0, 0, 1, 1])
    avgpool("averagepool_dynamic", None, [2, 2], strides=[2, 2],
            dyn=(["N", 3, "H", "W"], {"n1_h4_w4": [1, 3, 4, 4], "n2_h6_w8": [2, 3, 6, 8]}))

    chk = lambda x: [tnp(t64(x).mean(dim=tuple(range(2, x.ndim)), keepdim=True))]  # noqa: E731
    fx("globalaveragepool", node("GlobalAveragePool", ["X"], ["Y"]), [("X", F32, [2, 3, 5, 5])],
       [uni(r, [2, 3, 5, 5])], check=chk)
    fx("globalaveragepool_dynamic", node("GlobalAveragePool", ["X"], ["Y"]),
       [("X", F32, ["N", 4, "H", "W"])],
       {"n1_h3_w3": [uni(r, [1, 4, 3, 3])], "n2_h7_w5": [uni(r, [2, 4, 7, 5])]}, check=chk)
    fx("globalaveragepool_1x1", node("GlobalAveragePool", ["X"], ["Y"]),
       [("X", F32, [2, 6, 1, 1])], [uni(r, [2, 6, 1, 1])], check=chk)


# ============================================================================================
# Normalisation
# ============================================================================================


def gen_norm():
    r = rng_for("norm")

    def bn(name, decl, cases, c, eps=None):
        scale, bias = uni(r, [c], 0.5, 1.5), uni(r, [c])
        mean, var = uni(r, [c]), uni(r, [c], 0.2, 2.0)
        attrs = {} if eps is None else {"epsilon": eps}
        e = 1e-5 if eps is None else eps
        def chk(x):
            return [tnp(F.batch_norm(t64(x), t64(mean), t64(var), t64(scale), t64(bias), False,
                                     0.0, e))]

        fx(name, node("BatchNormalization", ["X", "scale", "B", "mean", "var"], ["Y"], **attrs),
           [("X", F32, decl)], cases,
           inits={"scale": scale, "B": bias, "mean": mean, "var": var}, check=chk)

    bn("batchnorm_4d", [2, 3, 4, 4], [uni(r, [2, 3, 4, 4], -2, 2)], 3)
    bn("batchnorm_2d_input", [5, 4], [uni(r, [5, 4], -2, 2)], 4)
    bn("batchnorm_3d_input", [2, 4, 6], [uni(r, [2, 4, 6], -2, 2)], 4)
    bn("batchnorm_epsilon", [2, 3, 3, 3], [uni(r, [2, 3, 3, 3], -2, 2)], 3, eps=1e-2)
    bn("batchnorm_dynamic", ["N", 3, "H", "W"],
       {"n1_h2_w3": [uni(r, [1, 3, 2, 3])], "n3_h4_w4": [uni(r, [3, 3, 4, 4])]}, 3)

    def ln(name, decl, cases, axis=-1, bias=True, eps=None):
        shape0 = list(cases.values())[0][0].shape if isinstance(cases, dict) else cases[0].shape
        norm_shape = list(shape0[axis:])
        scale = uni(r, norm_shape, 0.5, 1.5)
        b = uni(r, norm_shape) if bias else None
        attrs = {}
        if axis != -1:
            attrs["axis"] = axis
        if eps is not None:
            attrs["epsilon"] = eps
        e = 1e-5 if eps is None else eps
        inits = {"scale": scale}
        names = ["X", "scale"]
        if bias:
            inits["B"] = b
            names.append("B")
        chk = lambda x: [tnp(F.layer_norm(t64(x), norm_shape, t64(scale),  # noqa: E731
                                          None if b is None else t64(b), e))]
        fx(name, node("LayerNormalization", names, ["Y"], **attrs), [("X", F32, decl)], cases,
           inits=inits, check=chk)

    ln("layernorm_last_axis", [2, 3, 8], [uni(r, [2, 3, 8], -2, 2)])
    ln("layernorm_axis_minus2", [2, 3, 4], [uni(r, [2, 3, 4], -2, 2)], axis=-2)
    ln("layernorm_axis1", [2, 3, 4], [uni(r, [2, 3, 4], -2, 2)], axis=1)
    ln("layernorm_no_bias", [3, 16], [uni(r, [3, 16], -2, 2)], bias=False)
    ln("layernorm_epsilon", [2, 10], [uni(r, [2, 10], -0.01, 0.01)], eps=1e-3)
    # Rows with a large common offset: a one-pass E[x^2]-E[x]^2 variance loses precision.
    ln("layernorm_offset_rows", [2, 32], [uni(r, [2, 32], 99.0, 101.0)])
    ln("layernorm_dynamic", ["N", "S", 16],
       {"n1_s1": [uni(r, [1, 1, 16], -2, 2)], "n2_s7": [uni(r, [2, 7, 16], -2, 2)]})


# ============================================================================================
# Indexing, shape manipulation
# ============================================================================================


def gen_gather():
    r = rng_for("gather")
    table = uni(r, [10, 4])
    fx("gather_axis0", node("Gather", ["D", "I"], ["Y"]), [("D", F32, [10, 4]), ("I", I64, [2, 3])],
       [table, ints(r, [2, 3], 0, 10)], check=lambda d, i: [d[i]])
    fx("gather_axis1", node("Gather", ["D", "I"], ["Y"], axis=1),
       [("D", F32, [3, 5, 2]), ("I", I64, [4])], [uni(r, [3, 5, 2]), np.array([4, 0, 2, 2])],
       check=lambda d, i: [d[:, i]])
    fx("gather_axis_last_negative", node("Gather", ["D", "I"], ["Y"], axis=-1),
       [("D", F32, [3, 5]), ("I", I64, [2, 2])], [uni(r, [3, 5]), np.array([[1, 3], [4, 0]])],
       check=lambda d, i: [d[:, i]])
    fx("gather_negative_indices", node("Gather", ["D", "I"], ["Y"]),
       [("D", F32, [10, 4]), ("I", I64, [5])], [table, np.array([-1, 0, -10, 3, -4])],
       check=lambda d, i: [d[i]])
    fx("gather_negative_indices_axis1", node("Gather", ["D", "I"], ["Y"], axis=1),
       [("D", F32, [2, 6, 3]), ("I", I64, [3])], [uni(r, [2, 6, 3]), np.array([-1, -6, 2])],
       check=lambda d, i: [d[:, i]])
    fx("gather_scalar_index", node("Gather", ["D", "I"], ["Y"], axis=1),
       [("D", F32, [3, 5, 2]), ("I", I64, [])], [uni(r, [3, 5, 2]), np.array(3, I64)],
       check=lambda d, i: [d[:, int(i)]])
    fx("gather_int32_indices", node("Gather", ["D", "I"], ["Y"]),
       [("D", F32, [10, 4]), ("I", I32, [3])], [table, np.array([7, 1, 7], I32)],
       check=lambda d, i: [d[i]])
    fx("gather_int64_data", node("Gather", ["D", "I"], ["Y"]),
       [("D", I64, [4]), ("I", I64, [])], [np.array([2, 3, 5, 7], I64), np.array(2, I64)],
       check=lambda d, i: [np.array(d[int(i)])])
    emb = uni(r, [20, 8])
    fx("gather_embedding_dynamic", node("Gather", ["E", "I"], ["Y"]), [("I", I64, ["N", "S"])],
       {"n1_s1": [ints(r, [1, 1], 0, 20)], "n3_s5": [ints(r, [3, 5], 0, 20)]}, inits={"E": emb},
       check=lambda i: [emb[i]])


def gen_concat():
    r = rng_for("concat")
    fx("concat_axis1", node("Concat", ["A", "B", "C"], ["Y"], axis=1),
       [("A", F32, [2, 1, 3]), ("B", F32, [2, 2, 3]), ("C", F32, [2, 3, 3])],
       [uni(r, [2, 1, 3]), uni(r, [2, 2, 3]), uni(r, [2, 3, 3])],
       check=lambda a, b, c: [np.concatenate([a, b, c], 1)])
    fx("concat_axis0", node("Concat", ["A", "B"], ["Y"], axis=0),
       [("A", F32, [1, 4]), ("B", F32, [3, 4])], [uni(r, [1, 4]), uni(r, [3, 4])],
       check=lambda a, b: [np.concatenate([a, b], 0)])
    fx("concat_negative_axis", node("Concat", ["A", "B"], ["Y"], axis=-1),
       [("A", F32, [2, 3, 2]), ("B", F32, [2, 3, 5])], [uni(r, [2, 3, 2]), uni(r, [2, 3, 5])],
       check=lambda a, b: [np.concatenate([a, b], -1)])
    fx("concat_int64_shapes", node("Concat", ["A", "B"], ["Y"], axis=0),
       [("A", I64, [2]), ("B", I64, [1])], [np.array([3, 4], I64), np.array([-1], I64)],
       check=lambda a, b: [np.concatenate([a, b])])
    k = uni(r, [2, 3])
    fx("concat_with_initializer", node("Concat", ["A", "K"], ["Y"], axis=0),
       [("A", F32, ["N", 3])], {"n1": [uni(r, [1, 3])], "n4": [uni(r, [4, 3])]},
       inits={"K": k}, check=lambda a: [np.concatenate([a, k], 0)])
    fx("concat_dynamic", node("Concat", ["A", "B"], ["Y"], axis=1),
       [("A", F32, ["N", 3]), ("B", F32, ["N", 2])],
       {"n1": [uni(r, [1, 3]), uni(r, [1, 2])], "n4": [uni(r, [4, 3]), uni(r, [4, 2])]},
       check=lambda a, b: [np.concatenate([a, b], 1)])
    fx("concat_single_input", node("Concat", ["A"], ["Y"], axis=0), [("A", F32, [2, 3])],
       [uni(r, [2, 3])], check=lambda a: [a])


def gen_reshape():
    r = rng_for("reshape")
    x = uni(r, [2, 3, 4])

    def rs(name, shape, target, xs=(2, 3, 4), decl=None, cases=None):
        """target: fn(input shape) -> expected output shape, written out by hand."""
        s = np.array(shape, I64)
        fx(name, node("Reshape", ["X", "shape"], ["Y"]), [("X", F32, decl or list(xs))],
           cases or [uni(r, list(xs))], inits={"shape": s},
           check=lambda v: [v.reshape(target(v.shape))])

    rs("reshape_zero_and_neg1", [0, -1], lambda s: [2, 12])
    rs("reshape_neg1_middle", [2, -1, 2], lambda s: [2, 6, 2])
    rs("reshape_flat", [24], lambda s: [24])
    rs("reshape_expand_rank", [2, 3, 2, 2], lambda s: [2, 3, 2, 2])
    rs("reshape_zero_middle", [-1, 0, 2, 2], lambda s: [2, 3, 2, 2])
    rs("reshape_to_scalar", [], lambda s: [], xs=(1, 1))
    rs("reshape_dynamic", [0, -1], lambda s: [s[0], 12], decl=["N", 3, 4],
       cases={"n1": [uni(r, [1, 3, 4])], "n5": [uni(r, [5, 3, 4])]})
    rs("reshape_dynamic_heads", [0, 0, 2, -1], lambda s: [s[0], s[1], 2, 4],
       decl=["N", "S", 8], cases={"n1_s3": [uni(r, [1, 3, 8])], "n2_s5": [uni(r, [2, 5, 8])]})
    fx("reshape_shape_input", node("Reshape", ["X", "shape"], ["Y"]),
       [("X", F32, [2, 3, 4]), ("shape", I64, [3])],
       {"case0": [x, np.array([4, 3, 2], I64)], "case1": [x, np.array([-1, 1, 6], I64)]},
       check=lambda v, s: [v.reshape([4, 3, 2] if s[0] == 4 else [4, 1, 6])])

    def fl(name, axis, decl, cases):
        attrs = {} if axis is None else {"axis": axis}
        a = 1 if axis is None else axis

        def chk(x):
            ax = a + x.ndim if a < 0 else a
            return [x.reshape(int(np.prod(x.shape[:ax])), -1)]
        fx(name, node("Flatten", ["X"], ["Y"], **attrs), [("X", F32, decl)], cases, check=chk)

    fl("flatten_default", None, [2, 3, 4], [uni(r, [2, 3, 4])])
    fl("flatten_axis0", 0, [2, 3, 4], [uni(r, [2, 3, 4])])
    fl("flatten_axis2", 2, [2, 3, 4, 2], [uni(r, [2, 3, 4, 2])])
    fl("flatten_negative_axis", -1, [2, 3, 4], [uni(r, [2, 3, 4])])
    fl("flatten_dynamic", None, ["N", 3, 2, 2],
       {"n1": [uni(r, [1, 3, 2, 2])], "n4": [uni(r, [4, 3, 2, 2])]})

    def tr(name, perm, decl, cases):
        attrs = {} if perm is None else {"perm": perm}
        fx(name, node("Transpose", ["X"], ["Y"], **attrs), [("X", F32, decl)], cases,
           check=lambda x: [np.transpose(x, perm)])

    tr("transpose_default", None, [2, 3, 4], [uni(r, [2, 3, 4])])
    tr("transpose_2d", [1, 0], [3, 5], [uni(r, [3, 5])])
    tr("transpose_0213", [0, 2, 1, 3], [2, 3, 4, 5], [uni(r, [2, 3, 4, 5])])
    tr("transpose_nchw_to_nhwc", [0, 2, 3, 1], [1, 3, 4, 5], [uni(r, [1, 3, 4, 5])])
    tr("transpose_dynamic", [1, 0, 2], ["N", "S", 4],
       {"n1_s3": [uni(r, [1, 3, 4])], "n2_s5": [uni(r, [2, 5, 4])]})
    fx("transpose_int64", node("Transpose", ["X"], ["Y"], perm=[1, 0]), [("X", I64, [2, 3])],
       [ints(r, [2, 3], 0, 100)], check=lambda x: [x.T])


def gen_squeeze():
    r = rng_for("squeeze")
    x = uni(r, [1, 3, 1, 4])

    def sq(name, axes, opset=17, xs=(1, 3, 1, 4), data=None, decl=None, cases=None):
        data = x if data is None else data
        if axes is None:
            n = node("Squeeze", ["X"], ["Y"])
            inits = {}
        elif opset >= 13:
            n = node("Squeeze", ["X", "axes"], ["Y"])
            inits = {"axes": np.array(axes, I64)}
        else:
            n = node("Squeeze", ["X"], ["Y"], axes=axes)
            inits = {}
        exp_axes = None if axes is None else tuple(axes)
        fx(name, n, [("X", F32, decl or list(xs))], cases or [data], inits=inits, opset=opset,
           check=lambda v: [np.squeeze(v, exp_axes)])

    sq("squeeze_axes", [0, 2])
    sq("squeeze_negative_axis", [-2])
    sq("squeeze_all", None)
    sq("squeeze_opset13", [0, 2], opset=13)
    sq("squeeze_opset11_attribute", [2], opset=11)
    sq("squeeze_dynamic", [1], decl=["N", 1, 4],
       cases={"n1": [uni(r, [1, 1, 4])], "n3": [uni(r, [3, 1, 4])]})

    def usq(name, axes, xs, opset=17, decl=None, cases=None):
        if opset >= 13:
            n = node("Unsqueeze", ["X", "axes"], ["Y"])
            inits = {"axes": np.array(axes, I64)}
        else:
            n = node("Unsqueeze", ["X"], ["Y"], axes=axes)
            inits = {}

        def chk(v):
            rank = v.ndim + len(axes)
            y = v
            for a in sorted(a % rank for a in axes):
                y = np.expand_dims(y, a)
            return [y]
        fx(name, n, [("X", F32, decl or list(xs))], cases or [uni(r, list(xs))], inits=inits,
           opset=opset, check=chk)

    usq("unsqueeze_axis0", [0], [3, 4])
    usq("unsqueeze_multiple_axes", [3, 0], [3, 4])
    usq("unsqueeze_negative_axis", [-1], [3, 4])
    usq("unsqueeze_middle", [1, 2], [3, 4])
    usq("unsqueeze_scalar", [0], [])
    usq("unsqueeze_opset13", [1], [3, 4], opset=13)
    usq("unsqueeze_opset11_attribute", [0, 3], [3, 4], opset=11)
    usq("unsqueeze_dynamic", [1], None, decl=["N", 4],
        cases={"n1": [uni(r, [1, 4])], "n5": [uni(r, [5, 4])]})


def gen_slice():
    r = rng_for("slice")
    x = uni(r, [4, 5, 6])

    def sl(name, starts, ends, axes=None, steps=None, expect=None, xs=(4, 5, 6), decl=None,
           cases=None, opset=17):
        inits = {"starts": np.array(starts, I64), "ends": np.array(ends, I64)}
        names = ["X", "starts", "ends"]
        if axes is not None:
            inits["axes"] = np.array(axes, I64)
            names.append("axes")
        if steps is not None:
            if axes is None:
                names.append("")
            inits["steps"] = np.array(steps, I64)
            names.append("steps")
        fx(name, node("Slice", names, ["Y"]), [("X", F32, decl or list(xs))],
           cases or [x if xs == (4, 5, 6) else uni(r, list(xs))], inits=inits, opset=opset,
           check=lambda v: [np.ascontiguousarray(expect(v))])

    sl("slice_basic", [1, 0], [3, 4], axes=[0, 2], expect=lambda v: v[1:3, :, 0:4])
    sl("slice_no_axes", [0, 1, 2], [2, 4, 5], expect=lambda v: v[0:2, 1:4, 2:5])
    sl("slice_negative_starts", [-3], [INT64_MAX], axes=[1], expect=lambda v: v[:, -3:])
    sl("slice_negative_ends", [0, 1], [-1, -2], axes=[0, 2], expect=lambda v: v[0:-1, :, 1:-2])
    sl("slice_negative_axes", [1], [4], axes=[-1], expect=lambda v: v[..., 1:4])
    sl("slice_steps", [0, 1], [6, 5], axes=[2, 1], steps=[2, 3],
       expect=lambda v: v[:, 1:5:3, 0:6:2])
    sl("slice_reverse", [-1], [INT64_MIN], axes=[0], steps=[-1], expect=lambda v: v[::-1])
    sl("slice_negative_step2", [4, 5], [0, 1], axes=[2, 1], steps=[-2, -1],
       expect=lambda v: v[:, 5:1:-1, 4:0:-2])
    sl("slice_clamp_out_of_range", [-100, 2], [100, 1000], axes=[0, 1],
       expect=lambda v: v[:, 2:])
    sl("slice_empty_result", [3], [1], axes=[1], expect=lambda v: v[:, 3:1])
    sl("slice_steps_no_axes", [0, 0, 0], [4, 5, 6], steps=[1, 2, 3],
       expect=lambda v: v[:, ::2, ::3])
    sl("slice_opset13", [1], [-1], axes=[1], opset=13, expect=lambda v: v[:, 1:-1])
    sl("slice_dynamic", [2], [8], axes=[1], decl=["N", 10],
       cases={"n1": [uni(r, [1, 10])], "n3": [uni(r, [3, 10])]}, expect=lambda v: v[:, 2:8])
    sl("slice_dynamic_to_end", [1], [INT64_MAX], axes=[1], decl=[2, "S"],
       cases={"s3": [uni(r, [2, 3])], "s9": [uni(r, [2, 9])]}, expect=lambda v: v[:, 1:])
    fx("slice_starts_ends_inputs", node("Slice", ["X", "starts", "ends", "axes"], ["Y"]),
       [("X", F32, [4, 5, 6]), ("starts", I64, [1]), ("ends", I64, [1])],
       {"case0": [x, np.array([1], I64), np.array([3], I64)],
        "case1": [x, np.array([-4], I64), np.array([INT64_MAX], I64)]},
       inits={"axes": np.array([1], I64)},
       check=lambda v, a, b: [v[:, 1:3] if a[0] == 1 else v[:, -4:]])


def gen_split():
    r = rng_for("split")
    x = uni(r, [6, 4])

    def outs(k):
        return [f"Y{i}" for i in range(k)]

    fx("split_equal", node("Split", ["X"], outs(3), axis=0), [("X", F32, [6, 4])], [x],
       check=lambda v: np.split(v, 3, 0))
    fx("split_equal_axis1", node("Split", ["X"], outs(2), axis=1), [("X", F32, [3, 6])],
       [uni(r, [3, 6])], check=lambda v: np.split(v, 2, 1))
    fx("split_sizes", node("Split", ["X", "split"], outs(3), axis=1), [("X", F32, [2, 6])],
       [uni(r, [2, 6])], inits={"split": np.array([1, 2, 3], I64)},
       check=lambda v: np.split(v, [1, 3], 1))
    fx("split_negative_axis", node("Split", ["X", "split"], outs(2), axis=-1),
       [("X", F32, [2, 3, 5])], [uni(r, [2, 3, 5])], inits={"split": np.array([4, 1], I64)},
       check=lambda v: np.split(v, [4], -1))
    fx("split_default_axis", node("Split", ["X"], outs(2)), [("X", F32, [4, 3])],
       [uni(r, [4, 3])], check=lambda v: np.split(v, 2, 0))
    fx("split_opset13", node("Split", ["X", "split"], outs(2), axis=0), [("X", F32, [6, 4])],
       [x], opset=13, inits={"split": np.array([2, 4], I64)},
       check=lambda v: np.split(v, [2], 0))
    fx("split_opset13_equal", node("Split", ["X"], outs(3), axis=1), [("X", F32, [2, 9])],
       [uni(r, [2, 9])], opset=13, check=lambda v: np.split(v, 3, 1))
    fx("split_opset11_attribute", node("Split", ["X"], outs(2), axis=0, split=[5, 1]),
       [("X", F32, [6, 4])], [x], opset=11, check=lambda v: np.split(v, [5], 0))
    fx("split_dynamic", node("Split", ["X"], outs(2), axis=1), [("X", F32, ["N", 8])],
       {"n1": [uni(r, [1, 8])], "n3": [uni(r, [3, 8])]}, check=lambda v: np.split(v, 2, 1))
    fx("split_qkv", node("Split", ["X", "split"], outs(3), axis=-1), [("X", F32, ["N", "S", 12])],
       {"n1_s2": [uni(r, [1, 2, 12])], "n2_s3": [uni(r, [2, 3, 12])]},
       inits={"split": np.array([4, 4, 4], I64)}, check=lambda v: np.split(v, 3, -1))


def gen_shape_ops():
    r = rng_for("shape_ops")
    fx("shape_basic", node("Shape", ["X"], ["Y"]), [("X", F32, [2, 3, 4])], [uni(r, [2, 3, 4])],
       check=lambda v: [np.array(v.shape, I64)])
    fx("shape_start_end", node("Shape", ["X"], ["Y"], start=1, end=-1),
       [("X", F32, [2, 3, 4, 5])], [uni(r, [2, 3, 4, 5])],
       check=lambda v: [np.array(v.shape[1:-1], I64)])
    fx("shape_negative_start", node("Shape", ["X"], ["Y"], start=-2),
       [("X", F32, [2, 3, 4, 5])], [uni(r, [2, 3, 4, 5])],
       check=lambda v: [np.array(v.shape[-2:], I64)])
    fx("shape_dynamic", node("Shape", ["X"], ["Y"]), [("X", F32, ["N", "M"])],
       {"n1_m2": [uni(r, [1, 2])], "n4_m3": [uni(r, [4, 3])]},
       check=lambda v: [np.array(v.shape, I64)])
    fx("shape_of_scalar", node("Shape", ["X"], ["Y"]), [("X", F32, [])], [np.array(1.5, F32)],
       check=lambda v: [np.zeros([0], I64)])
    fx("shape_of_int64", node("Shape", ["X"], ["Y"]), [("X", I64, [3, 1])],
       [ints(r, [3, 1], 0, 5)], check=lambda v: [np.array([3, 1], I64)])

    def tv(dtype, value):
        return helper.make_tensor("value", fu.np_to_onnx(dtype),
                                  [1], [value])

    fx("constantofshape_float", node("ConstantOfShape", ["S"], ["Y"], value=tv(F32, 1.5)),
       [("S", I64, [3])],
       {"case0": [np.array([2, 3, 4], I64)], "case1": [np.array([1, 5, 1], I64)]},
       check=lambda s: [np.full(s, 1.5, F32)])
    fx("constantofshape_default_zero", node("ConstantOfShape", ["S"], ["Y"]), [("S", I64, [2])],
       [np.array([3, 2], I64)], check=lambda s: [np.zeros(s, F32)])
    fx("constantofshape_int64", node("ConstantOfShape", ["S"], ["Y"], value=tv(I64, 7)),
       [("S", I64, [2])], [np.array([2, 5], I64)], check=lambda s: [np.full(s, 7, I64)])
    fx("constantofshape_bool", node("ConstantOfShape", ["S"], ["Y"], value=tv(BOOL, True)),
       [("S", I64, [1])], [np.array([4], I64)], check=lambda s: [np.ones(s, BOOL)])
    fx("constantofshape_scalar_output",
       node("ConstantOfShape", ["S"], ["Y"], value=tv(F32, -2.0)), [("S", I64, [0])],
       [np.zeros([0], I64)], check=lambda s: [np.array(-2.0, F32)])
    fx("constantofshape_from_shape",
       [node("Shape", ["X"], ["s"]),
        node("ConstantOfShape", ["s"], ["Y"], value=tv(F32, 2.0))],
       [("X", F32, ["N", 3])], {"n1": [uni(r, [1, 3])], "n4": [uni(r, [4, 3])]},
       check=lambda v: [np.full(v.shape, 2.0, F32)])

    k = uni(r, [2, 3])
    fx("constant_tensor",
       [node("Constant", [], ["k"], value=numpy_helper.from_array(k, "k")),
        node("Add", ["X", "k"], ["Y"])],
       [("X", F32, [2, 3])], [uni(r, [2, 3])], check=lambda v: [v + k])
    fx("constant_value_float",
       [node("Constant", [], ["k"], value_float=0.25), node("Mul", ["X", "k"], ["Y"])],
       [("X", F32, [2, 3])], [uni(r, [2, 3])], check=lambda v: [v * F32(0.25)])
    fx("constant_value_floats",
       [node("Constant", [], ["k"], value_floats=[1.0, -2.0, 0.5]),
        node("Mul", ["X", "k"], ["Y"])],
       [("X", F32, [2, 3])], [uni(r, [2, 3])],
       check=lambda v: [v * np.array([1.0, -2.0, 0.5], F32)])
    fx("constant_value_ints_reshape",
       [node("Constant", [], ["shape"], value_ints=[3, -1]),
        node("Reshape", ["X", "shape"], ["Y"])],
       [("X", F32, [2, 3, 2])], [uni(r, [2, 3, 2])], check=lambda v: [v.reshape(3, 4)])
    fx("constant_value_int",
       [node("Constant", [], ["k"], value_int=3), node("Add", ["X", "k"], ["Y"])],
       [("X", I64, [4])], [ints(r, [4], -10, 10)], check=lambda v: [v + 3])
    fx("constant_only_output", node("Constant", [], ["Y"], value=numpy_helper.from_array(
        np.arange(6, dtype=I64).reshape(2, 3), "Y")), [], [],
       check=lambda: [np.arange(6, dtype=I64).reshape(2, 3)])


def gen_cast():
    r = rng_for("cast")
    P = fu.np_to_onnx

    def cast(name, src, dst, data, decl=None):
        fx(name, node("Cast", ["X"], ["Y"], to=P(np.dtype(dst))),
           [("X", src, decl or list(data.shape))], [data],
           check=lambda v: [v.astype(dst) if dst != BOOL else v != 0])

    # Away from integers so truncation toward zero is unambiguous; includes negatives.
    f = (np.floor(uni(r, [3, 4], -6, 6)) + uni(r, [3, 4], 0.1, 0.9)).astype(F32)
    cast("cast_float_to_int64", F32, I64, f)
    cast("cast_float_to_int32", F32, I32, f)
    cast("cast_int64_to_float", I64, F32, ints(r, [3, 4], -1000, 1000))
    cast("cast_int32_to_float", I32, F32, ints(r, [3, 4], -1000, 1000, I32))
    cast("cast_int64_to_int32", I64, I32, ints(r, [5], -100000, 100000))
    cast("cast_int32_to_int64", I32, I64, ints(r, [5], -100000, 100000, I32))
    zf = f.copy()
    zf[0, :2] = 0.0
    zf[2, 3] = -0.0
    cast("cast_float_to_bool", F32, BOOL, zf)
    zi = ints(r, [2, 5], -3, 3)
    cast("cast_int64_to_bool", I64, BOOL, zi)
    b = np.array([[True, False, True], [False, False, True]])
    cast("cast_bool_to_float", BOOL, F32, b)
    cast("cast_bool_to_int64", BOOL, I64, b)
    cast("cast_bool_to_int32", BOOL, I32, b)
    cast("cast_uint8_to_float", U8, F32, ints(r, [2, 3, 4], 0, 256, U8))
    cast("cast_float_to_float", F32, F32, f)
    cast("cast_float_to_double", F32, F64, f)
    cast("cast_double_to_float", F64, F32, uni(r, [2, 3], -5, 5, F64))


def gen_misc():
    r = rng_for("misc")
    fx("identity", node("Identity", ["X"], ["Y"]), [("X", F32, [2, 3])], [uni(r, [2, 3])],
       check=lambda v: [v])
    fx("identity_int64", node("Identity", ["X"], ["Y"]), [("X", I64, ["N"])],
       {"n3": [ints(r, [3], 0, 9)], "n1": [ints(r, [1], 0, 9)]}, check=lambda v: [v])
    fx("dropout_inference", node("Dropout", ["X"], ["Y"]), [("X", F32, [2, 5])],
       [uni(r, [2, 5])], check=lambda v: [v])
    fx("dropout_ratio_no_training", node("Dropout", ["X", "ratio"], ["Y"]),
       [("X", F32, [2, 5])], [uni(r, [2, 5])], inits={"ratio": np.array(0.3, F32)},
       check=lambda v: [v])
    fx("dropout_training_mode_false", node("Dropout", ["X", "ratio", "training"], ["Y"]),
       [("X", F32, [2, 5])], [uni(r, [2, 5])],
       inits={"ratio": np.array(0.5, F32), "training": np.array(False)}, check=lambda v: [v])
    fx("dropout_opset13", node("Dropout", ["X"], ["Y"]), [("X", F32, [3, 4])], [uni(r, [3, 4])],
       opset=13, check=lambda v: [v])

    # Where and comparisons.
    c = r.random([2, 1, 4]) < 0.5
    fx("where_broadcast", node("Where", ["C", "X", "Y"], ["Z"]),
       [("C", BOOL, [2, 1, 4]), ("X", F32, [3, 4]), ("Y", F32, [])],
       [c, uni(r, [3, 4]), np.array(-7.5, F32)], check=lambda c, x, y: [np.where(c, x, y)])
    fx("where_same_shape", node("Where", ["C", "X", "Y"], ["Z"]),
       [("C", BOOL, [3, 4]), ("X", F32, [3, 4]), ("Y", F32, [3, 4])],
       [r.random([3, 4]) < 0.5, uni(r, [3, 4]), uni(r, [3, 4])],
       check=lambda c, x, y: [np.where(c, x, y)])
    fx("where_int64", node("Where", ["C", "X", "Y"], ["Z"]),
       [("C", BOOL, [4]), ("X", I64, [4]), ("Y", I64, [1])],
       [np.array([True, False, False, True]), ints(r, [4], 0, 9), np.array([-1], I64)],
       check=lambda c, x, y: [np.where(c, x, y)])
    fx("where_mask_fill", [node("Equal", ["M", "zero"], ["c"]),
                           node("Where", ["c", "neg", "X"], ["Z"])],
       [("X", F32, ["N", 5]), ("M", I64, ["N", 5])],
       {"n2": [uni(r, [2, 5]), ints(r, [2, 5], 0, 2)],
        "n3": [uni(r, [3, 5]), ints(r, [3, 5], 0, 2)]},
       inits={"zero": np.array(0, I64), "neg": np.array(-1e4, F32)},
       check=lambda x, m: [np.where(m == 0, F32(-1e4), x)])

    a = uni(r, [3, 4])
    b = uni(r, [3, 4])
    b[0, :] = a[0, :]  # exact equalities so Equal/Less/Greater see ties
    b4 = uni(r, [4])
    b4[1] = a[2, 1]
    for op, fn in [("Equal", np.equal), ("Less", np.less), ("Greater", np.greater)]:
        low = op.lower()
        chk = (lambda f: lambda x, y: [f(x, y)])(fn)
        fx(f"{low}_float", node(op, ["A", "B"], ["C"]), [("A", F32, [3, 4]), ("B", F32, [3, 4])],
           [a, b], check=chk)
        fx(f"{low}_float_broadcast", node(op, ["A", "B"], ["C"]),
           [("A", F32, [3, 4]), ("B", F32, [4])], [a, b4], check=chk)
        fx(f"{low}_int64_broadcast", node(op, ["A", "B"], ["C"]),
           [("A", I64, [2, 3]), ("B", I64, [])], [ints(r, [2, 3], 0, 4), np.array(2, I64)],
           check=chk)
    fx("equal_bool", node("Equal", ["A", "B"], ["C"]), [("A", BOOL, [4]), ("B", BOOL, [4])],
       [np.array([True, True, False, False]), np.array([True, False, True, False])],
       check=lambda x, y: [x == y])

    p = np.array([[True, False, True, False], [False, False, True, True]])
    q = np.array([True, False, False, True])
    fx("not", node("Not", ["X"], ["Y"]), [("X", BOOL, [2, 4])], [p],
       check=lambda x: [np.logical_not(x)])
    fx("and_broadcast", node("And", ["A", "B"], ["C"]), [("A", BOOL, [2, 4]), ("B", BOOL, [4])],
       [p, q], check=lambda x, y: [x & y])
    fx("or_broadcast", node("Or", ["A", "B"], ["C"]), [("A", BOOL, [2, 4]), ("B", BOOL, [4])],
       [p, q], check=lambda x, y: [x | y])
    fx("and_same_shape", node("And", ["A", "B"], ["C"]),
       [("A", BOOL, [2, 4]), ("B", BOOL, [2, 4])], [p, p[::-1].copy()],
       check=lambda x, y: [x & y])
    fx("or_scalar", node("Or", ["A", "B"], ["C"]), [("A", BOOL, [2, 4]), ("B", BOOL, [])],
       [p, np.array(False)], check=lambda x, y: [x | y])


def gen_reduce():
    r = rng_for("reduce")
    x = uni(r, [2, 3, 4], -2, 2)

    def red(name, op, axes=None, keepdims=None, noop=None, opset=17, data=None, decl=None,
            cases=None, axes_as_input=None, expect=None):
        if axes_as_input is None:
            axes_as_input = (op == "ReduceSum" and opset >= 13)
        attrs = {}
        if keepdims is not None:
            attrs["keepdims"] = keepdims
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
        inits = {}
        names = ["X"]
        if axes is not None:
            if axes_as_input:
                inits["axes"] = np.array(axes, I64)
                names.append("axes")
            else:
                attrs["axes"] = axes
        data = x if data is None else data
        decl = decl or list(data.shape)
        fx(name, node(op, names, ["Y"], **attrs), [("X", data.dtype.type, decl)],
           cases or [data], inits=inits, opset=opset, check=expect)

    def npred(fn, axes, keep=True):
        def run(v):
            out = fn(v.astype(F64) if v.dtype == F32 else v,
                     axis=None if axes is None else tuple(axes), keepdims=keep)
            return [np.asarray(out).astype(v.dtype)]
        return run

    for op, fn in [("ReduceMean", np.mean), ("ReduceSum", np.sum), ("ReduceMax", np.max)]:
        low = op.lower()
        red(f"{low}_keepdims", op, [1], expect=npred(fn, [1]))
        red(f"{low}_keepdims_0", op, [1], keepdims=0, expect=npred(fn, [1], False))
        red(f"{low}_multiple_axes", op, [0, 2], keepdims=0, expect=npred(fn, [0, 2], False))
        red(f"{low}_multiple_axes_keepdims", op, [2, 0], expect=npred(fn, [0, 2]))
        red(f"{low}_negative_axis", op, [-1], expect=npred(fn, [-1]))
        red(f"{low}_all_axes", op, None, expect=npred(fn, None))
        red(f"{low}_all_axes_keepdims_0", op, None, keepdims=0, expect=npred(fn, None, False))
        red(f"{low}_dynamic", op, [-1], keepdims=0, decl=["N", 6],
            cases={"n1": [uni(r, [1, 6])], "n4": [uni(r, [4, 6])]},
            expect=npred(fn, [-1], False))
    red("reducemax_int64", "ReduceMax", [1], keepdims=0, data=ints(r, [3, 5], -50, 50),
        expect=npred(np.max, [1], False))
    red("reducesum_int64", "ReduceSum", [0], data=ints(r, [3, 5], -50, 50),
        expect=npred(np.sum, [0]))
    red("reducesum_noop_with_empty_axes", "ReduceSum", None, noop=1, expect=lambda v: [v])
    red("reducesum_empty_axes_input", "ReduceSum", [], expect=npred(np.sum, None))
    red("reducesum_empty_axes_input_noop", "ReduceSum", [], noop=1, expect=lambda v: [v])
    red("reducesum_opset13", "ReduceSum", [0, -1], keepdims=0, opset=13,
        expect=npred(np.sum, [0, 2], False))
    red("reducesum_opset11_attribute", "ReduceSum", [1], opset=11, expect=npred(np.sum, [1]))
    red("reducemean_opset13", "ReduceMean", [-1], opset=13, expect=npred(np.mean, [-1]))
    fx("reducesum_axes_input_runtime", node("ReduceSum", ["X", "axes"], ["Y"], keepdims=0),
       [("X", F32, [2, 3, 4]), ("axes", I64, [1])],
       {"axis0": [x, np.array([0], I64)], "axis2": [x, np.array([2], I64)]},
       check=lambda v, a: [np.sum(v.astype(F64), axis=int(a[0])).astype(F32)])


def gen_expand_range_tile_pad():
    r = rng_for("expand_range_tile_pad")
    fx("expand_basic", node("Expand", ["X", "shape"], ["Y"]), [("X", F32, [3, 1])],
       [uni(r, [3, 1])], inits={"shape": np.array([2, 3, 4], I64)},
       check=lambda v: [np.broadcast_to(v, [2, 3, 4]).copy()])
    fx("expand_shape_smaller_rank", node("Expand", ["X", "shape"], ["Y"]), [("X", F32, [3, 4])],
       [uni(r, [3, 4])], inits={"shape": np.array([1, 1], I64)}, check=lambda v: [v])
    fx("expand_ones_in_shape", node("Expand", ["X", "shape"], ["Y"]), [("X", F32, [2, 1, 3])],
       [uni(r, [2, 1, 3])], inits={"shape": np.array([1, 4, 1], I64)},
       check=lambda v: [np.broadcast_to(v, [2, 4, 3]).copy()])
    fx("expand_shape_input", node("Expand", ["X", "shape"], ["Y"]),
       [("X", F32, [1, 3]), ("shape", I64, [2])],
       {"case0": [uni(r, [1, 3]), np.array([4, 3], I64)],
        "case1": [uni(r, [1, 3]), np.array([2, 1], I64)]},
       check=lambda v, s: [np.broadcast_to(v, np.broadcast_shapes(v.shape, tuple(s))).copy()])
    fx("expand_dynamic", node("Expand", ["X", "shape"], ["Y"]), [("X", F32, ["N", 1])],
       {"n1": [uni(r, [1, 1])], "n3": [uni(r, [3, 1])]},
       inits={"shape": np.array([1, 5], I64)},
       check=lambda v: [np.broadcast_to(v, [v.shape[0], 5]).copy()])
    fx("expand_int64", node("Expand", ["X", "shape"], ["Y"]), [("X", I64, [])],
       [np.array(4, I64)], inits={"shape": np.array([2, 2], I64)},
       check=lambda v: [np.full([2, 2], 4, I64)])

    s = lambda v, dt: np.array(v, dt)  # noqa: E731
    fx("range_float", node("Range", ["start", "limit", "delta"], ["Y"]),
       [("start", F32, []), ("limit", F32, []), ("delta", F32, [])],
       {"case0": [s(1.0, F32), s(5.5, F32), s(0.5, F32)],
        "case1": [s(2.0, F32), s(-1.0, F32), s(-0.75, F32)]},
       check=lambda a, b, c: [np.arange(float(a), float(b), float(c)).astype(F32)])
    fx("range_int64", node("Range", ["start", "limit", "delta"], ["Y"]),
       [("start", I64, []), ("limit", I64, []), ("delta", I64, [])],
       {"case0": [s(0, I64), s(10, I64), s(3, I64)],
        "negative_delta": [s(10, I64), s(2, I64), s(-2, I64)],
        "empty": [s(5, I64), s(5, I64), s(1, I64)]},
       check=lambda a, b, c: [np.arange(int(a), int(b), int(c), dtype=I64)])
    fx("range_int64_from_shape",
       [node("Shape", ["X"], ["sh"]),
        node("Gather", ["sh", "one"], ["n"], axis=0),
        node("Range", ["zero", "n", "one"], ["Y"])],
       [("X", F32, ["N", "S"])],
       {"n1_s4": [uni(r, [1, 4])], "n2_s7": [uni(r, [2, 7])]},
       inits={"zero": np.array(0, I64), "one": np.array(1, I64)},
       check=lambda v: [np.arange(v.shape[1], dtype=I64)])

    fx("tile_basic", node("Tile", ["X", "repeats"], ["Y"]), [("X", F32, [2, 3])],
       [uni(r, [2, 3])], inits={"repeats": np.array([2, 3], I64)},
       check=lambda v: [np.tile(v, [2, 3])])
    fx("tile_3d", node("Tile", ["X", "repeats"], ["Y"]), [("X", F32, [2, 1, 3])],
       [uni(r, [2, 1, 3])], inits={"repeats": np.array([1, 3, 2], I64)},
       check=lambda v: [np.tile(v, [1, 3, 2])])
    fx("tile_repeats_input", node("Tile", ["X", "repeats"], ["Y"]),
       [("X", F32, [2, 2]), ("repeats", I64, [2])],
       {"case0": [uni(r, [2, 2]), np.array([1, 2], I64)],
        "case1": [uni(r, [2, 2]), np.array([3, 1], I64)]},
       check=lambda v, k: [np.tile(v, k)])
    fx("tile_int64", node("Tile", ["X", "repeats"], ["Y"]), [("X", I64, [3])],
       [ints(r, [3], 0, 9)], inits={"repeats": np.array([2], I64)},
       check=lambda v: [np.tile(v, 2)])

    def pad(name, xs, pads, mode=None, value=None, dtype=F32, expect=None, data=None):
        attrs = {} if mode is None else {"mode": mode}
        inits = {"pads": np.array(pads, I64)}
        names = ["X", "pads"]
        if value is not None:
            inits["value"] = np.array(value, dtype)
            names.append("value")
        fx(name, node("Pad", names, ["Y"], **attrs), [("X", dtype, xs)],
           [uni(r, xs) if data is None else data], inits=inits, check=expect)

    def tpad(pads, mode="constant", value=0.0):
        def run(v):
            rank = v.ndim
            tp = []
            for i in reversed(range(rank)):
                tp += [pads[i], pads[i + rank]]
            t = t64(v)
            if mode == "constant":
                return [tnp(F.pad(t, tp, "constant", value), v.dtype)]
            # torch reflect/replicate pad only the trailing dims of a >= 3-d (N, C, ...) input.
            return [tnp(F.pad(t, tp[:2 * (rank - 2)], mode), v.dtype)]
        return run

    pad("pad_constant_zero", [2, 3, 4], [0, 1, 2, 0, 2, 1], expect=tpad([0, 1, 2, 0, 2, 1]))
    pad("pad_constant_value", [2, 3], [1, 2, 0, 1], value=1.5,
        expect=tpad([1, 2, 0, 1], value=1.5))
    pad("pad_constant_4d_spatial", [1, 2, 3, 3], [0, 0, 1, 1, 0, 0, 1, 1],
        expect=tpad([0, 0, 1, 1, 0, 0, 1, 1]))
    pad("pad_reflect", [1, 2, 4, 5], [0, 0, 1, 2, 0, 0, 2, 1], mode="reflect",
        expect=tpad([0, 0, 1, 2, 0, 0, 2, 1], "reflect"))
    pad("pad_edge", [1, 2, 4, 5], [0, 0, 2, 1, 0, 0, 1, 3], mode="edge",
        expect=tpad([0, 0, 2, 1, 0, 0, 1, 3], "replicate"))
    pad("pad_reflect_3d", [1, 3, 6], [0, 0, 3, 0, 0, 2], mode="reflect",
        expect=tpad([0, 0, 3, 0, 0, 2], "reflect"))
    pad("pad_negative_crop", [3, 5], [-1, 1, 0, -2], value=-1.0,
        expect=lambda v: [np.pad(v[1:, :3], [(0, 0), (1, 0)], constant_values=-1.0)])
    pad("pad_int64_constant", [2, 2], [1, 0, 0, 1], value=9, dtype=I64,
        data=ints(r, [2, 2], 0, 5),
        expect=lambda v: [np.pad(v, [(1, 0), (0, 1)], constant_values=9)])
    fx("pad_pads_input", node("Pad", ["X", "pads"], ["Y"]),
       [("X", F32, [2, 3]), ("pads", I64, [4])],
       {"case0": [uni(r, [2, 3]), np.array([0, 1, 1, 0], I64)],
        "case1": [uni(r, [2, 3]), np.array([2, 0, 0, 2], I64)]},
       check=lambda v, p: [np.pad(v, [(p[0], p[2]), (p[1], p[3])])])


def gen_topk_arg():
    r = rng_for("topk_arg")

    def topk(name, xs, k, axis=None, largest=None, decl=None, k_input=False, cases=None):
        attrs = {}
        if axis is not None:
            attrs["axis"] = axis
        if largest is not None:
            attrs["largest"] = largest
        ax = -1 if axis is None else axis
        lg = True if largest is None else bool(largest)

        def chk(v, kk=None):
            kv = int(np.asarray(kk if kk is not None else k).reshape(-1)[0])
            vals, idx = torch.topk(t64(v), kv, dim=ax, largest=lg, sorted=True)
            return [tnp(vals, v.dtype), idx.numpy().astype(I64)]

        ins = [("X", F32, decl or xs)]
        inits = {}
        if k_input:
            ins.append(("K", I64, [1]))
        else:
            inits["K"] = np.array([k], I64)
        fx(name, node("TopK", ["X", "K"], ["Values", "Indices"], **attrs), ins,
           cases or [distinct(r, xs)], inits=inits, check=chk)

    topk("topk_largest", [3, 8], 3)
    topk("topk_smallest", [3, 8], 3, largest=0)
    topk("topk_axis1", [2, 6, 3], 2, axis=1)
    topk("topk_axis0_smallest", [5, 4], 2, axis=0, largest=0)
    topk("topk_k_equals_dim", [2, 5], 5)
    topk("topk_k_input", [3, 8], None, k_input=True,
         cases={"k1": [distinct(r, [3, 8]), np.array([1], I64)],
                "k5": [distinct(r, [3, 8]), np.array([5], I64)]})
    topk("topk_dynamic", None, 2, decl=["N", 10],
         cases={"n1": [distinct(r, [1, 10])], "n4": [distinct(r, [4, 10])]})

    def arg(name, op, data, axis=None, keepdims=None, last=None):
        attrs = {}
        if axis is not None:
            attrs["axis"] = axis
        if keepdims is not None:
            attrs["keepdims"] = keepdims
        if last is not None:
            attrs["select_last_index"] = last
        ax = 0 if axis is None else axis
        keep = True if keepdims is None else bool(keepdims)

        def chk(v):
            f = np.argmax if op == "ArgMax" else np.argmin
            if last:
                i = v.shape[ax] - 1 - f(np.flip(v, ax), axis=ax)
            else:
                i = f(v, axis=ax)  # numpy returns the first of equal extremes
            i = i.astype(I64)
            return [np.expand_dims(i, ax) if keep else i]

        fx(name, node(op, ["X"], ["Y"], **attrs), [("X", data.dtype.type, list(data.shape))],
           [data], check=chk)

    # Integer-valued floats in a small range: plenty of ties, so the index choice matters.
    ties = r.integers(0, 3, size=[3, 6]).astype(F32)
    arg("argmax_default", "ArgMax", distinct(r, [4, 5]))
    arg("argmax_axis1_keepdims", "ArgMax", distinct(r, [2, 5, 3]), axis=1)
    arg("argmax_axis1_no_keepdims", "ArgMax", distinct(r, [2, 5, 3]), axis=1, keepdims=0)
    arg("argmax_negative_axis", "ArgMax", distinct(r, [2, 3, 4]), axis=-1, keepdims=0)
    arg("argmax_ties_first_index", "ArgMax", ties, axis=1)
    arg("argmax_select_last_index", "ArgMax", ties, axis=1, last=1)
    arg("argmax_select_last_index_axis0", "ArgMax", ties, axis=0, keepdims=0, last=1)
    arg("argmax_int64", "ArgMax", ints(r, [3, 4], -5, 5), axis=1, keepdims=0)
    arg("argmin_axis1", "ArgMin", distinct(r, [3, 5]), axis=1)
    arg("argmin_select_last_index", "ArgMin", ties, axis=1, keepdims=0, last=1)


GENERATORS = [gen_binary, gen_unary, gen_softmax, gen_matmul, gen_gemm, gen_conv,
              gen_conv_transpose, gen_pool, gen_norm, gen_gather, gen_concat, gen_reshape,
              gen_squeeze, gen_slice, gen_split, gen_shape_ops, gen_cast, gen_misc, gen_reduce,
              gen_expand_range_tile_pad, gen_topk_arg]


# ============================================================================================
# Building and writing
# ============================================================================================


def build_model(spec, out_dtypes, out_ranks):
    ins = [helper.make_tensor_value_info(n, fu.np_to_onnx(dt), s)
           for n, dt, s in spec.inputs]
    outs = [helper.make_tensor_value_info(n, fu.np_to_onnx(dt), None)
            for n, dt in zip(spec.outputs, out_dtypes)]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in spec.inits.items()]
    graph = helper.make_graph(spec.nodes, spec.name, ins, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", spec.opset)],
                              producer_name="flywheel-tools/gen_op_fixtures")
    # IR version 7 is what opset 12/13-era producers wrote; 8 for the rest (onnx 1.12 default).
    model.ir_version = 7 if spec.opset <= 12 else 8
    # Fill in output shapes (with symbols where inputs have them) from ONNX shape inference.
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    del inferred.graph.value_info[:]
    for out, rank in zip(inferred.graph.output, out_ranks):
        tt = out.type.tensor_type
        for d in tt.shape.dim:
            # Inference names dims it cannot compute unk__<n>; leave those simply unknown.
            if d.HasField("dim_param") and d.dim_param.startswith("unk__"):
                d.ClearField("dim_param")
        if not tt.HasField("shape"):
            # Value-dependent shape (Range, Reshape by a runtime shape, ...): rank only.
            tt.shape.SetInParent()
            for _ in range(rank):
                tt.shape.dim.add()
    return inferred


def make_fixture(spec):
    # Outputs' element types come from the reference itself; run once with untyped outputs.
    prelim = helper.make_model(helper.make_graph(
        spec.nodes, spec.name,
        [helper.make_tensor_value_info(n, fu.np_to_onnx(dt), s)
         for n, dt, s in spec.inputs],
        [helper.ValueInfoProto(name=n) for n in spec.outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in spec.inits.items()]),
        opset_imports=[helper.make_opsetid("", spec.opset)])
    results = {}
    for case, inputs in spec.cases.items():
        outs = fu.run_model(prelim, inputs)
        if spec.check is not None:
            want = spec.check(*inputs)
            for k, (got, w) in enumerate(zip(outs, want)):
                # Independent check at a tenth of the runner's tolerance.
                fu.assert_close(got, np.asarray(w), f"{spec.name}/{case} output {k} vs torch",
                                atol=fu.ATOL / 10, rtol=fu.RTOL / 10)
            if len(want) != len(outs):
                raise AssertionError(f"{spec.name}: check gave {len(want)} outputs")
        results[case] = (inputs, outs)
    first = next(iter(results.values()))[1]
    ranks = {tuple(o.ndim for o in outs) for _, outs in results.values()}
    if len(ranks) != 1:
        raise AssertionError(f"{spec.name}: output ranks differ between cases: {ranks}")
    model = build_model(spec, [o.dtype for o in first], [o.ndim for o in first])
    return model, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-only", action="store_true",
                    help="compute and check every fixture, write nothing")
    ap.add_argument("--only", help="comma-separated fixture names (with --check-only)")
    args = ap.parse_args()

    for gen in GENERATORS:
        gen()
    names = [s.name for s in SPECS]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"duplicate fixture names: {sorted(dup)}")
    specs = SPECS
    if args.only:
        keep = set(args.only.split(","))
        specs = [s for s in SPECS if s.name in keep]

    built = [(s, *make_fixture(s)) for s in specs]
    if args.check_only:
        print(f"checked {len(built)} fixtures")
        return
    fu.clear_dir(OUT_DIR)
    for spec, model, results in built:
        try:
            fu.write_fixture(OUT_DIR, spec.name, model, results)
        except Exception as e:
            raise SystemExit(f"fixture {spec.name}: {type(e).__name__}: {e}")
    n_checked = sum(1 for s in specs if s.check is not None)
    print(f"wrote {len(built)} fixtures to {os.path.relpath(OUT_DIR, fu.REPO_ROOT)} "
          f"({n_checked} cross-checked against an independent computation)")


if __name__ == "__main__":
    main()
