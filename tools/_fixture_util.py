"""Shared helpers for the fixture generators in tools/.

Two things live here:

* writing a fixture folder in the layout the C++ test runner reads
  (model.onnx + <case>/input_<k>.npy + <case>/output_<k>.npy), after checking the model;
* a small NumPy interpreter for ONNX graphs (`run_model`). gen_op_fixtures.py uses it to
  compute the reference outputs of its single-operator models straight from the node
  attributes, and gen_models.py uses it to check that each exported graph computes what torch
  computed (e.g. that a dynamic sequence length was not frozen into a constant by tracing).

The interpreter computes floating-point ops in float64 and rounds each node's result to the
declared float type, so its numbers are as close to the exact result as a float32 engine can
hope to get.  It only implements the operators and forms the generators use.
"""

import math
import os
import shutil

import numpy as np
import onnx
from onnx import helper, mapping, numpy_helper

# --------------------------------------------------------------------------------------------
# Fixture folders
# --------------------------------------------------------------------------------------------

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TOOLS_DIR)
FIXTURES_DIR = os.path.join(REPO_ROOT, "tests", "fixtures")

def np_to_onnx(dtype):
    """numpy dtype -> TensorProto element type (onnx 1.12 has no helper for this)."""
    return mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dtype)]


def onnx_to_np(elem_type):
    return mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type]


# The C++ runner's comparison: |got - want| <= ATOL + RTOL * |want|.
ATOL = 1e-5
RTOL = 1e-4


def clear_dir(path):
    """Removes and recreates `path`; refuses to touch anything outside tests/fixtures."""
    path = os.path.abspath(path)
    if not path.startswith(FIXTURES_DIR + os.sep):
        raise ValueError(f"refusing to clear {path}: not under {FIXTURES_DIR}")
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def graph_inputs(model):
    """The graph inputs the caller must feed (initializers excluded), in graph order."""
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def _declared_dims(vi):
    """Per-dim declared size: an int, a symbol string, or None (unknown). None if no shape."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def check_arrays_match(vis, arrays, what, symbols):
    """Checks arrays against declared value infos: dtype, rank, static dims, symbol binding."""
    if len(vis) != len(arrays):
        raise AssertionError(f"{what}: {len(arrays)} arrays for {len(vis)} declared tensors")
    for vi, arr in zip(vis, arrays):
        want_dtype = onnx_to_np(vi.type.tensor_type.elem_type)
        if arr.dtype != want_dtype:
            raise AssertionError(f"{what} '{vi.name}': dtype {arr.dtype}, declared {want_dtype}")
        dims = _declared_dims(vi)
        if dims is None:
            continue
        if len(dims) != arr.ndim:
            raise AssertionError(f"{what} '{vi.name}': shape {arr.shape}, declared {dims}")
        for d, n in zip(dims, arr.shape):
            if isinstance(d, int) and d != n:
                raise AssertionError(f"{what} '{vi.name}': shape {arr.shape}, declared {dims}")
            if isinstance(d, str):
                if symbols.setdefault(d, n) != n:
                    raise AssertionError(
                        f"{what} '{vi.name}': symbol {d} is {n} here, {symbols[d]} elsewhere")


def check_model(model):
    onnx.checker.check_model(model, full_check=True)


def write_fixture(group_dir, name, model, cases):
    """Writes one fixture folder.

    cases: dict case name -> (inputs, outputs), lists of np arrays in graph order.
    """
    check_model(model)
    ins = graph_inputs(model)
    outs = list(model.graph.output)
    for case, (inputs, outputs) in cases.items():
        symbols = {}
        check_arrays_match(ins, inputs, f"{name}/{case} input", symbols)
        check_arrays_match(outs, outputs, f"{name}/{case} output", symbols)
    folder = os.path.join(group_dir, name)
    os.makedirs(folder)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    for case, (inputs, outputs) in cases.items():
        cdir = os.path.join(folder, case)
        os.makedirs(cdir)
        for kind, arrays in (("input", inputs), ("output", outputs)):
            for k, arr in enumerate(arrays):
                path = os.path.join(cdir, f"{kind}_{k}.npy")
                _save_npy(path, arr)


def _save_npy(path, arr):
    """np.save in C order, little-endian, keeping 0-d arrays 0-d; verified by reading back."""
    arr = np.asarray(arr)
    # Not np.ascontiguousarray: it turns a 0-d array into shape (1,).
    arr = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=True)
    np.save(path, arr)
    back = np.load(path)
    if back.shape != arr.shape or back.dtype != arr.dtype or not np.array_equal(
            back, arr, equal_nan=np.issubdtype(arr.dtype, np.floating)):
        raise AssertionError(f"{path}: read back differs from what was written")


def assert_close(got, want, what, atol=ATOL, rtol=RTOL):
    """The runner's tolerance (optionally scaled); exact for non-float dtypes."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, want {want.shape}")
    if got.dtype != want.dtype:
        raise AssertionError(f"{what}: dtype {got.dtype}, want {want.dtype}")
    if not np.issubdtype(want.dtype, np.floating):
        if not np.array_equal(got, want):
            raise AssertionError(f"{what}: values differ\n got {got}\nwant {want}")
        return
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    bad = ~(np.abs(g - w) <= atol + rtol * np.abs(w))
    if bad.any():
        i = np.argmax(bad.reshape(-1))
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} values out of tolerance; first at flat {i}: "
            f"got {g.reshape(-1)[i]!r} want {w.reshape(-1)[i]!r}; "
            f"max abs diff {np.max(np.abs(g - w))}")


# --------------------------------------------------------------------------------------------
# NumPy ONNX interpreter
# --------------------------------------------------------------------------------------------

_OPS = {}


def _op(*names):
    def register(fn):
        for n in names:
            _OPS[n] = fn
        return fn
    return register


def _is_float(a):
    return np.issubdtype(a.dtype, np.floating)


def _f64(a):
    return a.astype(np.float64) if _is_float(a) else a


def _like(result, ref):
    """Rounds a float64 intermediate back to the dtype of the op's (float) input."""
    return np.asarray(result).astype(ref.dtype)


class _Node:
    """Attribute access for one NodeProto, with defaults."""

    def __init__(self, node, opset):
        self.node = node
        self.opset = opset
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def get(self, name, default=None):
        v = self.attrs.get(name, default)
        if isinstance(v, bytes):
            v = v.decode()
        return v


def run_model(model, inputs):
    """Runs `model` on `inputs` (list of arrays, graph-input order); returns the outputs."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for vi, arr in zip(graph_inputs(model), inputs):
        env[vi.name] = arr
    for node in model.graph.node:
        fn = _OPS.get(node.op_type)
        if fn is None:
            raise NotImplementedError(f"reference interpreter: no {node.op_type}")
        args = [env[n] if n else None for n in node.input]
        results = fn(_Node(node, opset), *args)
        if not isinstance(results, (list, tuple)):
            results = [results]
        for name, val in zip(node.output, results):
            if name:
                env[name] = np.asarray(val)
    return [env[o.name] for o in model.graph.output]


# ---- elementwise -----------------------------------------------------------------------------


def _binary(fn):
    def run(n, a, b):
        if _is_float(a):
            return _like(fn(_f64(a), _f64(b)), a)
        return np.asarray(fn(a, b)).astype(a.dtype)
    return run


_op("Add")(_binary(np.add))
_op("Sub")(_binary(np.subtract))
_op("Mul")(_binary(np.multiply))


@_op("Div")
def _div(n, a, b):
    if _is_float(a):
        return _like(_f64(a) / _f64(b), a)
    # Integer division truncates toward zero (C semantics), unlike numpy's floor division.
    q = np.abs(a) // np.abs(b)
    return (np.sign(a) * np.sign(b) * q).astype(a.dtype)


@_op("Pow")
def _pow(n, a, b):
    if _is_float(a):
        return _like(np.power(_f64(a), b.astype(np.float64)), a)
    return np.power(a, b.astype(a.dtype)).astype(a.dtype)


def _unary(fn):
    def run(n, x):
        if _is_float(x):
            return _like(fn(_f64(x)), x)
        return np.asarray(fn(x)).astype(x.dtype)
    return run


_erf = np.vectorize(math.erf, otypes=[np.float64])

_op("Sqrt")(_unary(np.sqrt))
_op("Exp")(_unary(np.exp))
_op("Log")(_unary(np.log))
_op("Neg")(_unary(np.negative))
_op("Abs")(_unary(np.abs))
_op("Erf")(_unary(_erf))
_op("Tanh")(_unary(np.tanh))
_op("Sigmoid")(_unary(lambda x: 1.0 / (1.0 + np.exp(-x))))
_op("Relu")(_unary(lambda x: np.maximum(x, 0)))
_op("Reciprocal")(_unary(lambda x: 1.0 / x))
_op("Floor")(_unary(np.floor))
_op("Ceil")(_unary(np.ceil))


@_op("LeakyRelu")
def _leaky_relu(n, x):
    alpha = n.get("alpha", 0.01)
    v = _f64(x)
    return _like(np.where(v >= 0, v, alpha * v), x)


@_op("Elu")
def _elu(n, x):
    alpha = n.get("alpha", 1.0)
    v = _f64(x)
    return _like(np.where(v >= 0, v, alpha * np.expm1(v)), x)


@_op("HardSigmoid")
def _hard_sigmoid(n, x):
    alpha = n.get("alpha", 0.2)
    beta = n.get("beta", 0.5)
    return _like(np.clip(alpha * _f64(x) + beta, 0.0, 1.0), x)


@_op("Clip")
def _clip(n, x, lo=None, hi=None):
    if n.opset < 11:
        lo_v, hi_v = n.get("min"), n.get("max")
    else:
        lo_v = None if lo is None else lo.item()
        hi_v = None if hi is None else hi.item()
    v = x
    if lo_v is not None:
        v = np.maximum(v, np.asarray(lo_v).astype(x.dtype))
    if hi_v is not None:
        v = np.minimum(v, np.asarray(hi_v).astype(x.dtype))
    return v.astype(x.dtype)


def _variadic(fn):
    def run(n, *xs):
        out = _f64(xs[0])
        for x in xs[1:]:
            out = fn(out, _f64(x))
        return np.asarray(out).astype(xs[0].dtype)
    return run


_op("Max")(_variadic(np.maximum))
_op("Min")(_variadic(np.minimum))
_op("Sum")(_variadic(np.add))


@_op("Equal")
def _equal(n, a, b):
    return np.equal(a, b)


@_op("Less")
def _less(n, a, b):
    return np.less(a, b)


@_op("Greater")
def _greater(n, a, b):
    return np.greater(a, b)


@_op("LessOrEqual")
def _less_equal(n, a, b):
    return np.less_equal(a, b)


@_op("GreaterOrEqual")
def _greater_equal(n, a, b):
    return np.greater_equal(a, b)


@_op("Not")
def _not(n, x):
    return np.logical_not(x)


@_op("And")
def _and(n, a, b):
    return np.logical_and(a, b)


@_op("Or")
def _or(n, a, b):
    return np.logical_or(a, b)


@_op("Xor")
def _xor(n, a, b):
    return np.logical_xor(a, b)


@_op("Where")
def _where(n, c, x, y):
    return np.where(c, x, y).astype(x.dtype)


# ---- softmax, matmul, gemm -------------------------------------------------------------------


def _softmax64(v, axis):
    m = np.max(v, axis=axis, keepdims=True)
    e = np.exp(v - m)
    return e / np.sum(e, axis=axis, keepdims=True), np.log(np.sum(e, axis=axis, keepdims=True)), m


def _softmax_axes(n, x):
    """(array view, restore fn, axis): opset < 13 coerces to 2-D at `axis`."""
    if n.opset >= 13:
        return _f64(x), (lambda r: r), n.get("axis", -1)
    axis = n.get("axis", 1) % max(x.ndim, 1)
    rows = int(np.prod(x.shape[:axis]))
    return _f64(x).reshape(rows, -1), (lambda r: r.reshape(x.shape)), 1


@_op("Softmax")
def _softmax(n, x):
    v, restore, axis = _softmax_axes(n, x)
    return _like(restore(_softmax64(v, axis)[0]), x)


@_op("LogSoftmax")
def _log_softmax(n, x):
    v, restore, axis = _softmax_axes(n, x)
    _, lse, m = _softmax64(v, axis)
    return _like(restore(v - m - lse), x)


@_op("MatMul")
def _matmul(n, a, b):
    if _is_float(a):
        return _like(np.matmul(_f64(a), _f64(b)), a)
    return np.matmul(a, b).astype(a.dtype)


@_op("Gemm")
def _gemm(n, a, b, c=None):
    a64 = _f64(a).T if n.get("transA", 0) else _f64(a)
    b64 = _f64(b).T if n.get("transB", 0) else _f64(b)
    y = n.get("alpha", 1.0) * (a64 @ b64)
    if c is not None:
        y = y + n.get("beta", 1.0) * _f64(c)
    return _like(y, a)


# ---- convolution and pooling -----------------------------------------------------------------


def _conv_pads(n, in_sp, eff_k, strides):
    """Begin/end pads per spatial dim from pads / auto_pad (Conv and pooling rules)."""
    nsp = len(in_sp)
    auto_pad = n.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(nsp):
            out = -(-in_sp[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + eff_k[i] - in_sp[i])
            small, big = total // 2, total - total // 2
            if auto_pad == "SAME_UPPER":
                begin.append(small)
                end.append(big)
            else:
                begin.append(big)
                end.append(small)
        return begin, end
    if auto_pad == "VALID":
        return [0] * nsp, [0] * nsp
    pads = list(n.get("pads", [0] * (2 * nsp)))
    return pads[:nsp], pads[nsp:]


def conv_ref(x, w, b=None, strides=None, pads_begin=None, pads_end=None, dilations=None,
             group=1):
    """N-d grouped convolution (cross-correlation) in float64. x [N,C,*sp], w [M,C/g,*k]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    strides = strides or [1] * nsp
    dilations = dilations or [1] * nsp
    pads_begin = pads_begin or [0] * nsp
    pads_end = pads_end or [0] * nsp
    ksp = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(pads_begin, pads_end)))
    out_sp = [(xp.shape[2 + i] - ((ksp[i] - 1) * dilations[i] + 1)) // strides[i] + 1
              for i in range(nsp)]
    n_, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    y = np.zeros([n_, m] + out_sp)
    for g in range(group):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * mg:(g + 1) * mg]
        for kidx in np.ndindex(*ksp):
            sl = tuple(slice(kidx[i] * dilations[i],
                             kidx[i] * dilations[i] + (out_sp[i] - 1) * strides[i] + 1,
                             strides[i]) for i in range(nsp))
            patch = xg[(slice(None), slice(None)) + sl]            # [N, cg, *out]
            wk = wg[(slice(None), slice(None)) + kidx]              # [mg, cg]
            y[:, g * mg:(g + 1) * mg] += np.einsum("nc...,mc->nm...", patch, wk)
    if b is not None:
        y += np.asarray(b, np.float64).reshape([1, m] + [1] * nsp)
    return y


@_op("Conv")
def _conv(n, x, w, b=None):
    nsp = x.ndim - 2
    ksp = list(n.get("kernel_shape", w.shape[2:]))
    strides = list(n.get("strides", [1] * nsp))
    dil = list(n.get("dilations", [1] * nsp))
    eff_k = [(ksp[i] - 1) * dil[i] + 1 for i in range(nsp)]
    pb, pe = _conv_pads(n, x.shape[2:], eff_k, strides)
    return _like(conv_ref(x, w, b, strides, pb, pe, dil, n.get("group", 1)), x)


def conv_transpose_ref(x, w, b=None, strides=None, pads_begin=None, pads_end=None,
                       dilations=None, output_padding=None, group=1):
    """N-d grouped transposed convolution in float64. x [N,C,*sp], w [C, M/g, *k]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    strides = strides or [1] * nsp
    dilations = dilations or [1] * nsp
    pads_begin = pads_begin or [0] * nsp
    pads_end = pads_end or [0] * nsp
    output_padding = output_padding or [0] * nsp
    in_sp = x.shape[2:]
    ksp = w.shape[2:]
    full = [(in_sp[i] - 1) * strides[i] + (ksp[i] - 1) * dilations[i] + 1 + output_padding[i]
            for i in range(nsp)]
    n_, c = x.shape[:2]
    cg = c // group
    mg = w.shape[1]
    m = mg * group
    y = np.zeros([n_, m] + full)
    for g in range(group):
        xg = x[:, g * cg:(g + 1) * cg]
        wg = w[g * cg:(g + 1) * cg]                                  # [cg, mg, *k]
        for kidx in np.ndindex(*ksp):
            sl = tuple(slice(kidx[i] * dilations[i],
                             kidx[i] * dilations[i] + (in_sp[i] - 1) * strides[i] + 1,
                             strides[i]) for i in range(nsp))
            wk = wg[(slice(None), slice(None)) + kidx]              # [cg, mg]
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + sl] += np.einsum(
                "nc...,cm->nm...", xg, wk)
    crop = tuple(slice(pads_begin[i], full[i] - pads_end[i]) for i in range(nsp))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape([1, m] + [1] * nsp)
    return y


@_op("ConvTranspose")
def _conv_transpose(n, x, w, b=None):
    nsp = x.ndim - 2
    if n.get("output_shape") is not None or n.get("auto_pad", "NOTSET") != "NOTSET":
        raise NotImplementedError("ConvTranspose output_shape/auto_pad")
    pads = list(n.get("pads", [0] * (2 * nsp)))
    return _like(conv_transpose_ref(
        x, w, b, list(n.get("strides", [1] * nsp)), pads[:nsp], pads[nsp:],
        list(n.get("dilations", [1] * nsp)), list(n.get("output_padding", [0] * nsp)),
        n.get("group", 1)), x)


def pool_ref(x, kind, kernel, strides, pads_begin, pads_end, dilations=None, ceil_mode=False,
             count_include_pad=False):
    """N-d max/average pooling in float64.

    Windows that run past the padded input (ceil_mode) only see positions inside it; for
    count_include_pad the divisor counts real and pad positions inside the padded extent.
    """
    x = np.asarray(x, np.float64)
    nsp = x.ndim - 2
    dilations = dilations or [1] * nsp
    in_sp = x.shape[2:]
    eff_k = [(kernel[i] - 1) * dilations[i] + 1 for i in range(nsp)]
    out_sp = []
    for i in range(nsp):
        span = in_sp[i] + pads_begin[i] + pads_end[i] - eff_k[i]
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        out_sp.append(o)
    # Extend the padded array so every window is in range; mark real and in-pad positions.
    tail = [max(pads_end[i], (out_sp[i] - 1) * strides[i] + eff_k[i] - in_sp[i] - pads_begin[i])
            for i in range(nsp)]
    widths = [(0, 0), (0, 0)] + [(pads_begin[i], tail[i]) for i in range(nsp)]
    xp = np.pad(x, widths, constant_values=-np.inf if kind == "max" else 0.0)
    real = np.pad(np.ones(in_sp), widths[2:])
    inpad = np.zeros(real.shape)
    inpad[tuple(slice(0, pads_begin[i] + in_sp[i] + pads_end[i]) for i in range(nsp))] = 1.0
    acc = np.full(list(x.shape[:2]) + out_sp, -np.inf if kind == "max" else 0.0)
    n_real = np.zeros(out_sp)
    n_inpad = np.zeros(out_sp)
    for kidx in np.ndindex(*kernel):
        sl = tuple(slice(kidx[i] * dilations[i],
                         kidx[i] * dilations[i] + (out_sp[i] - 1) * strides[i] + 1,
                         strides[i]) for i in range(nsp))
        patch = xp[(slice(None), slice(None)) + sl]
        if kind == "max":
            acc = np.maximum(acc, patch)
        else:
            acc = acc + patch
        n_real += real[sl]
        n_inpad += inpad[sl]
    if kind == "max":
        return acc
    return acc / (n_inpad if count_include_pad else n_real)


def _pool(kind):
    def run(n, x):
        nsp = x.ndim - 2
        kernel = list(n.get("kernel_shape"))
        strides = list(n.get("strides", [1] * nsp))
        dil = list(n.get("dilations", [1] * nsp))
        eff_k = [(kernel[i] - 1) * dil[i] + 1 for i in range(nsp)]
        pb, pe = _conv_pads(n, x.shape[2:], eff_k, strides)
        y = pool_ref(x, kind, kernel, strides, pb, pe, dil, bool(n.get("ceil_mode", 0)),
                     bool(n.get("count_include_pad", 0)))
        return _like(y, x)
    return run


_op("MaxPool")(_pool("max"))
_op("AveragePool")(_pool("avg"))


@_op("GlobalAveragePool")
def _global_avg_pool(n, x):
    return _like(np.mean(_f64(x), axis=tuple(range(2, x.ndim)), keepdims=True), x)


@_op("GlobalMaxPool")
def _global_max_pool(n, x):
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


# ---- normalisation ---------------------------------------------------------------------------


@_op("BatchNormalization")
def _batch_norm(n, x, scale, bias, mean, var):
    if n.get("training_mode", 0):
        raise NotImplementedError("BatchNormalization training_mode")
    eps = n.get("epsilon", 1e-5)
    shp = [1, -1] + [1] * (x.ndim - 2)
    y = ((_f64(x) - _f64(mean).reshape(shp)) / np.sqrt(_f64(var).reshape(shp) + eps)
         * _f64(scale).reshape(shp) + _f64(bias).reshape(shp))
    return _like(y, x)


@_op("LayerNormalization")
def _layer_norm(n, x, scale, bias=None):
    axis = n.get("axis", -1) % x.ndim
    eps = n.get("epsilon", 1e-5)
    axes = tuple(range(axis, x.ndim))
    v = _f64(x)
    mean = v.mean(axis=axes, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (v - mean) / np.sqrt(var + eps) * _f64(scale)
    if bias is not None:
        y = y + _f64(bias)
    return _like(y, x)


# ---- shape and data movement -----------------------------------------------------------------


@_op("Identity", "Dropout")
def _identity(n, x, *rest):
    if n.node.op_type == "Dropout" and len(rest) >= 2 and rest[1] is not None and rest[1].item():
        raise NotImplementedError("Dropout training_mode")
    return [x, np.ones(x.shape, dtype=bool)]


@_op("Gather")
def _gather(n, x, idx):
    axis = n.get("axis", 0) % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return np.take(x, idx, axis=axis)


@_op("Concat")
def _concat(n, *xs):
    return np.concatenate(xs, axis=n.get("axis"))


@_op("Reshape")
def _reshape(n, x, shape):
    shape = [int(s) for s in shape]
    if not n.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@_op("Flatten")
def _flatten(n, x):
    axis = n.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


@_op("Transpose")
def _transpose(n, x):
    perm = n.get("perm")
    return np.transpose(x, perm if perm is None else list(perm))


def _axes_arg(n, axes_input):
    """Axes from the input (newer opsets) or the attribute (older ones); None if absent."""
    if axes_input is not None:
        return [int(a) for a in axes_input]
    a = n.get("axes")
    return None if a is None else list(a)


@_op("Squeeze")
def _squeeze(n, x, axes=None):
    axes = _axes_arg(n, axes)
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes))


@_op("Unsqueeze")
def _unsqueeze(n, x, axes=None):
    axes = _axes_arg(n, axes)
    rank = x.ndim + len(axes)
    axes = sorted(a % rank for a in axes)
    y = x
    for a in axes:
        y = np.expand_dims(y, a)
    return y


@_op("Slice")
def _slice(n, x, starts=None, ends=None, axes=None, steps=None):
    if n.opset < 10:
        starts, ends, axes = n.get("starts"), n.get("ends"), n.get("axes")
    starts = [int(s) for s in starts]
    ends = [int(e) for e in ends]
    axes = list(range(len(starts))) if axes is None else [int(a) % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    sl = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        dim = x.shape[a]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        # A python slice with stop -1 means "to the end"; use None for "before index 0".
        sl[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(sl)]


@_op("Split")
def _split(n, x, split=None):
    axis = n.get("axis", 0) % x.ndim
    sizes = [int(s) for s in split] if split is not None else n.get("split")
    if sizes is None:
        parts = len(n.node.output)
        sizes = [x.shape[axis] // parts] * parts
    bounds = np.cumsum(sizes)[:-1]
    return np.split(x, bounds, axis=axis)


@_op("Shape")
def _shape(n, x):
    shape = np.array(x.shape, dtype=np.int64)
    start = n.get("start", 0)
    end = n.get("end")
    return shape[start:end]


@_op("Size")
def _size(n, x):
    return np.array(x.size, dtype=np.int64)


@_op("ConstantOfShape")
def _constant_of_shape(n, shape):
    value = n.get("value")
    arr = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value)
    return np.full([int(s) for s in shape], arr.reshape(-1)[0], dtype=arr.dtype)


@_op("Constant")
def _constant(n):
    for key in ("value", "sparse_value"):
        if key in n.attrs:
            return numpy_helper.to_array(n.attrs[key])
    if "value_float" in n.attrs:
        return np.array(n.attrs["value_float"], np.float32)
    if "value_floats" in n.attrs:
        return np.array(n.attrs["value_floats"], np.float32)
    if "value_int" in n.attrs:
        return np.array(n.attrs["value_int"], np.int64)
    if "value_ints" in n.attrs:
        return np.array(n.attrs["value_ints"], np.int64)
    raise NotImplementedError("Constant form")


@_op("Cast")
def _cast(n, x):
    to = onnx_to_np(n.get("to"))
    if to == np.bool_:
        return x != 0
    if np.issubdtype(to, np.integer) and _is_float(x):
        return np.trunc(x).astype(to)
    return x.astype(to)


@_op("Expand")
def _expand(n, x, shape):
    shape = [int(s) for s in shape]
    out = np.broadcast_shapes(x.shape, tuple(shape))
    return np.broadcast_to(x, out).copy()


@_op("Range")
def _range(n, start, limit, delta):
    count = max(int(math.ceil((limit.item() - start.item()) / delta.item())), 0)
    if _is_float(start):
        vals = start.astype(np.float64) + np.arange(count) * delta.astype(np.float64)
        return vals.astype(start.dtype)
    return (start + np.arange(count, dtype=start.dtype) * delta).astype(start.dtype)


@_op("Tile")
def _tile(n, x, repeats):
    return np.tile(x, [int(r) for r in repeats])


@_op("Pad")
def _pad(n, x, pads=None, value=None):
    if n.opset < 11:
        pads, value = n.get("pads"), n.get("value", 0.0)
    else:
        value = 0 if value is None else value.item()
    pads = [int(p) for p in pads]
    r = x.ndim
    begin, end = pads[:r], pads[r:]
    mode = n.get("mode", "constant")
    # Negative pads crop; apply them first, then pad by the positive amounts.
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0))
                 for i, (b, e) in enumerate(zip(begin, end)))
    y = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        return np.pad(y, widths, mode="constant", constant_values=value).astype(x.dtype)
    return np.pad(y, widths, mode={"reflect": "reflect", "edge": "edge"}[mode])


@_op("TopK")
def _topk(n, x, k):
    axis = n.get("axis", -1) % x.ndim
    k = int(k.reshape(-1)[0])
    key = -x if n.get("largest", 1) else x
    order = np.argsort(key, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


def _arg(fn):
    def run(n, x):
        axis = n.get("axis", 0) % x.ndim
        keep = n.get("keepdims", 1)
        if n.get("select_last_index", 0):
            flipped = np.flip(x, axis=axis)
            idx = x.shape[axis] - 1 - fn(flipped, axis=axis)
        else:
            idx = fn(x, axis=axis)
        idx = idx.astype(np.int64)
        return np.expand_dims(idx, axis) if keep else idx
    return run


_op("ArgMax")(_arg(np.argmax))
_op("ArgMin")(_arg(np.argmin))


def _reduce(fn, axes_as_input_since):
    def run(n, x, axes=None):
        if n.opset >= axes_as_input_since:
            axes = None if axes is None else [int(a) for a in axes]
        else:
            axes = n.get("axes")
            axes = None if axes is None else list(axes)
        keep = bool(n.get("keepdims", 1))
        if not axes:
            if n.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        axes = tuple(sorted(a % x.ndim for a in axes))
        if _is_float(x):
            return _like(fn(_f64(x), axis=axes, keepdims=keep), x)
        return np.asarray(fn(x, axis=axes, keepdims=keep)).astype(x.dtype)
    return run


_op("ReduceSum")(_reduce(np.sum, 13))
_op("ReduceMean")(_reduce(np.mean, 18))
_op("ReduceMax")(_reduce(np.max, 18))
_op("ReduceMin")(_reduce(np.min, 18))
_op("ReduceProd")(_reduce(np.prod, 18))


@_op("Mod")
def _mod(n, a, b):
    if n.get("fmod", 0):
        return np.fmod(a, b).astype(a.dtype)
    return np.mod(a, b).astype(a.dtype)
