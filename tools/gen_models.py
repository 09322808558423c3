#!/usr/bin/python3
"""Exports the model-level ONNX fixtures under tests/fixtures/models/ from torch.

Each model is built with fixed seeds, put in eval mode and exported with torch.onnx.export
with a dynamic batch axis (and sequence axis for the transformer).  Reference outputs come
from a float64 copy of the model, cast to float32.  Before anything is written, every
exported graph is run through the NumPy interpreter in _fixture_util.py on every case and
must match the reference: this catches exports that froze a dynamic size into a constant.

Run:  /usr/bin/python3 tools/gen_models.py [--check-only]
"""

import argparse
import copy
import io
import math
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _fixture_util as fu  # noqa: E402

OUT_DIR = os.path.join(fu.FIXTURES_DIR, "models")
MAX_MODEL_BYTES = 4 * 1024 * 1024


# ============================================================================================
# Models
# ============================================================================================


class MLPRanker(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(256, 512), nn.ReLU(),
            nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 1), nn.Sigmoid())

    def forward(self, features):
        return self.net(features)


class Recommender(nn.Module):
    def __init__(self, n_users=10000, n_items=5000, dim=32, n_dense=13):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        # Embedding rows of realistic scale (N(0, 1) would saturate the sigmoid).
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.dense = nn.Sequential(nn.Linear(n_dense, dim), nn.ReLU())
        self.mlp = nn.Sequential(
            nn.Linear(3 * dim, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 1), nn.Sigmoid())

    def forward(self, user_id, item_id, dense):
        x = torch.cat([self.user_emb(user_id), self.item_emb(item_id), self.dense(dense)], dim=1)
        return self.mlp(x)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus skip, then ReLU; stride-2 1x1 conv + BN on the skip."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.skip = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.skip(x))


class CNN(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(), nn.MaxPool2d(2))              # 32x32 -> 16x16
        self.block1 = ResidualBlock(16, 32, 2)                             # -> 8x8
        self.block2 = ResidualBlock(32, 64, 2)                             # -> 4x4
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, n_classes)

    def forward(self, image):
        x = self.block2(self.block1(self.stem(image)))
        return self.fc(self.flatten(self.pool(x)))


def randomize_batchnorm(model, gen):
    """Non-trivial eval statistics, so that a wrong or missing BN (or BN folding) shows."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(c, generator=gen) - 0.5)


class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.h = n_heads
        self.dh = d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, s, d = x.shape  # traced as Shape ops, so batch and seq stay dynamic in the graph
        q = self.q(x).reshape(b, s, self.h, self.dh).transpose(1, 2)
        k = self.k(x).reshape(b, s, self.h, self.dh).transpose(1, 2)
        v = self.v(x).reshape(b, s, self.h, self.dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        y = torch.softmax(scores, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, vocab=1000, max_seq=128, d_model=128, n_heads=4, d_ff=512, n_layers=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_seq, d_model)
        nn.init.normal_(self.tok.weight, std=0.5)
        nn.init.normal_(self.pos.weight, std=0.5)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        # LayerNorm affine parameters away from the (1, 0) defaults, so they matter.
        for m in self.modules():
            if isinstance(m, nn.LayerNorm):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)

    def forward(self, input_ids):
        # Positions from an arange of the (dynamic) sequence length: exported as Range.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(positions)
        for layer in self.layers:
            x = layer(x)
        return self.ln_f(x)


# ============================================================================================
# Model specs: builder, input names/kinds, dynamic axes, cases
# ============================================================================================


def _f32(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def _ids(rng, shape, n):
    return rng.integers(0, n, size=shape).astype(np.int64)


def spec_mlp_ranker():
    torch.manual_seed(101)
    rng = np.random.default_rng(101)
    return dict(
        model=MLPRanker(), inputs=["features"], outputs=["score"],
        dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}},
        cases={f"batch{b}": [_f32(rng, [b, 256])] for b in (1, 4, 7)})


def spec_recommender():
    torch.manual_seed(202)
    rng = np.random.default_rng(202)
    cases = {}
    for b in (1, 4, 7):
        user = _ids(rng, [b], 10000)
        item = _ids(rng, [b], 5000)
        if b == 4:
            user[0], item[0] = 9999, 4999   # last rows of both tables
            user[1], item[1] = 0, 0
        cases[f"batch{b}"] = [user, item, _f32(rng, [b, 13], -2.0, 2.0)]
    return dict(
        model=Recommender(), inputs=["user_id", "item_id", "dense"], outputs=["score"],
        dynamic_axes={"user_id": {0: "batch"}, "item_id": {0: "batch"}, "dense": {0: "batch"},
                      "score": {0: "batch"}},
        cases=cases)


def spec_cnn():
    torch.manual_seed(303)
    gen = torch.Generator().manual_seed(303)
    rng = np.random.default_rng(303)
    model = CNN()
    randomize_batchnorm(model, gen)
    return dict(
        model=model, inputs=["image"], outputs=["logits"],
        # EVAL mode would fold every BatchNorm into its Conv inside the exporter; PRESERVE
        # (with the model in eval()) keeps the inference BatchNormalization nodes, so that it
        # is the engine's own folding that gets tested.
        training=torch.onnx.TrainingMode.PRESERVE,
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        cases={f"batch{b}": [_f32(rng, [b, 3, 32, 32])] for b in (1, 4)})


def spec_transformer():
    torch.manual_seed(404)
    rng = np.random.default_rng(404)
    cases = {}
    for b, s in ((1, 8), (3, 16), (2, 1), (1, 128)):
        cases[f"batch{b}_seq{s}"] = [_ids(rng, [b, s], 1000)]
    return dict(
        model=Transformer(), inputs=["input_ids"], outputs=["hidden"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "hidden": {0: "batch", 1: "seq"}},
        cases=cases)


# name -> (spec builder, opset)
MODELS = {
    "mlp_ranker": (spec_mlp_ranker, 17),
    "mlp_ranker_opset13": (spec_mlp_ranker, 13),
    "recommender": (spec_recommender, 17),
    "cnn": (spec_cnn, 17),
    "transformer": (spec_transformer, 17),
    "transformer_opset13": (spec_transformer, 13),
}


# ============================================================================================
# Export, reference, check
# ============================================================================================


def export(model, example, input_names, output_names, dynamic_axes, opset,
           training=torch.onnx.TrainingMode.EVAL):
    buf = io.BytesIO()
    torch.onnx.export(model, tuple(example), buf, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes,
                      opset_version=opset, do_constant_folding=True,
                      training=training)
    m = onnx.load_from_string(buf.getvalue())
    m.producer_name = "flywheel-tools/gen_models (torch.onnx.export)"
    return m


def reference(model64, inputs):
    """float64 forward pass, outputs cast to float32."""
    args = [torch.from_numpy(a.astype(np.float64) if a.dtype == np.float32 else a)
            for a in inputs]
    with torch.no_grad():
        out = model64(*args)
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.numpy().astype(np.float32) for o in outs]


def torch_f32(model, inputs):
    with torch.no_grad():
        out = model(*[torch.from_numpy(a) for a in inputs])
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in outs]


def max_ratio(got, want):
    """Worst |got - want| / (atol + rtol |want|): below 1 passes the runner's check."""
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    return float(np.max(np.abs(g - w) / (fu.ATOL + fu.RTOL * np.abs(w))))


def build(name, spec_fn, opset):
    spec = spec_fn()
    model = spec["model"].eval()
    model64 = copy.deepcopy(model).double().eval()
    first = next(iter(spec["cases"].values()))
    example = [torch.from_numpy(a) for a in first]
    onnx_model = export(model, example, spec["inputs"], spec["outputs"], spec["dynamic_axes"],
                        opset, spec.get("training", torch.onnx.TrainingMode.EVAL))
    fu.check_model(onnx_model)
    size = len(onnx_model.SerializeToString())
    if size > MAX_MODEL_BYTES:
        raise SystemExit(f"{name}: model is {size} bytes, over the {MAX_MODEL_BYTES} budget")

    results = {}
    report = []
    for case, inputs in spec["cases"].items():
        want = reference(model64, inputs)
        got_onnx = fu.run_model(onnx_model, inputs)
        got_t32 = torch_f32(model, inputs)
        for k, w in enumerate(want):
            # The exported graph, evaluated independently, must compute the torch function.
            fu.assert_close(got_onnx[k], w, f"{name}/{case} output {k}: ONNX graph vs torch")
            report.append(f"{case}: float32 torch at {max_ratio(got_t32[k], w):.3f} "
                          f"of tolerance, ONNX graph at {max_ratio(got_onnx[k], w):.3f}")
        results[case] = (inputs, want)
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    return onnx_model, results, size, ops, report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-only", action="store_true", help="export and check, write nothing")
    ap.add_argument("--only", help="comma-separated model names (with --check-only)")
    args = ap.parse_args()
    # PRESERVE export of an eval() model warns about constant folding of training graphs;
    # it does not apply (nothing is in training mode), so keep the output readable.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # float32 comparisons in the report stay the same run to run

    names = list(MODELS)
    if args.only:
        names = [n for n in names if n in set(args.only.split(","))]
    built = {}
    for name in names:
        spec_fn, opset = MODELS[name]
        onnx_model, results, size, ops, report = build(name, spec_fn, opset)
        built[name] = (onnx_model, results)
        print(f"{name}: opset {opset}, {size / 1e6:.2f} MB, ops {' '.join(ops)}")
        for line in report:
            print(f"  {line}")
    if args.check_only:
        return
    fu.clear_dir(OUT_DIR)
    for name, (onnx_model, results) in built.items():
        fu.write_fixture(OUT_DIR, name, onnx_model, results)
    print(f"wrote {len(built)} models to {os.path.relpath(OUT_DIR, fu.REPO_ROOT)}")


if __name__ == "__main__":
    main()
