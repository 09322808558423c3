#!/usr/bin/env bash
# `make serve`: until the inference server lands, runs the engine once on the example MLP ranker
# model with `flywheel infer` and shows how to run other models.
# Usage: scripts/serve.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
flywheel=$build/flywheel
model_dir=tests/fixtures/models/mlp_ranker
case_dir=$model_dir/batch4

if [[ ! -x $flywheel ]]; then
  echo "serve.sh: $flywheel not found; run 'make build' first" >&2
  exit 1
fi
if [[ ! -f $model_dir/model.onnx || ! -d $case_dir ]]; then
  echo "serve.sh: example model $model_dir (with case batch4) not found" >&2
  exit 1
fi

echo "The inference server (flywheel serve) is not written yet; running the engine once instead."
echo
echo "\$ $flywheel infer $model_dir/model.onnx --input-dir $case_dir --output-dir $build/serve-out"
"$flywheel" infer "$model_dir/model.onnx" --input-dir "$case_dir" --output-dir "$build/serve-out"
echo
# Compare with the reference output of the case (the example model has one output, output_0.npy).
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  /usr/bin/python3 - "$case_dir" "$build/serve-out" <<'PY'
import os, sys
import numpy as np
case, out = sys.argv[1:]
got = sorted(os.listdir(out))
for k, name in enumerate(got if len(got) == 1 else []):
    want = np.load(os.path.join(case, f"output_{k}.npy"))
    diff = float(np.max(np.abs(np.load(os.path.join(out, name)) - want)))
    print(f"{name}: max abs difference from {case}/output_{k}.npy = {diff:.3g}")
PY
fi
echo
cat <<HELP
Try other models:
  $flywheel infer MODEL.onnx --input NAME=FILE.npy [--input ...] [--output-dir DIR] [--threads N]
  $flywheel infer MODEL.onnx --input-dir DIR     # DIR/<input name>.npy or DIR/input_<k>.npy
  $flywheel bench MODEL.onnx --batch 1,64 --threads 1,2
Example models and inputs: tests/fixtures/models/<name>/model.onnx with <case>/input_<k>.npy
(names: $(ls tests/fixtures/models | tr '\n' ' '))
Usage: docs/cli.md
HELP
