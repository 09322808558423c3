#!/usr/bin/env bash
# `make bench`: flywheel's engine against ONNX Runtime on the example models (same inputs, same
# run), output check against ORT, transformer memory; then tree models against XGBoost's own
# predictor (bench/trees_vs_xgboost); writes docs/benchmarks.md; then the inference server
# (bench/serving_bench.py); then the feature store (bench/features_bench); then what model
# monitoring costs (bench/monitoring_bench.py).
# Usage: scripts/bench.sh BUILD_DIR [extra options for bench/engine_vs_ort.py, e.g. --reps 3]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
if [[ ! -x $build/flywheel ]]; then
  echo "bench.sh: $build/flywheel not found; run 'make build' first" >&2
  exit 1
fi
for tool in node npm /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is required" >&2; exit 1; }
done
/usr/bin/python3 -c 'import numpy' 2>/dev/null ||
  { echo "bench.sh: /usr/bin/python3 needs numpy (apt-get install python3-numpy)" >&2; exit 1; }

echo "== installing the ONNX Runtime peer (../shared/peers/setup.sh)"
peers=$(bash ../shared/peers/setup.sh)
export FLYWHEEL_PEERS_DIR=$peers
echo "   $peers"

/usr/bin/python3 bench/engine_vs_ort.py --flywheel "$build/flywheel" \
  --work "$build/bench-work" --out docs/benchmarks.md \
  --command "make bench  (scripts/bench.sh $build${*:+ $*})" "$@"

# Tree models against XGBoost's own predictor; writes its section of docs/benchmarks.md (after
# the engine comparison, which rewrites the file).
if [[ -x $build/bench/trees_vs_xgboost ]]; then
  echo "== trees: flywheel vs XGBoost (bench/trees_vs_xgboost)"
  "$build/bench/trees_vs_xgboost" --model-dir "$build/bench-work/trees" \
    --update-doc docs/benchmarks.md --command "make bench  (scripts/bench.sh $build)"
else
  echo "bench.sh: $build/bench/trees_vs_xgboost not built (needs libxgboost-dev); skipped" >&2
fi

# The inference server against nginx, the engine alone, and across protocols; it replaces only
# its own section of docs/benchmarks.md (bench/serving_bench.py --help).
echo "== inference server (bench/serving_bench.py)"
/usr/bin/python3 bench/serving_bench.py "$build" --out docs/benchmarks.md \
  --command "make bench  (scripts/bench.sh $build): bench/serving_bench.py $build"

# The feature store (issue 5): aggregation throughput, online lookups in memory / RocksDB / Redis
# and plain MGETs on the same redis-server (which it starts); replaces its own section.
if [[ -x $build/bench/features_bench ]]; then
  echo "== feature store (bench/features_bench)"
  "$build/bench/features_bench" --update-doc docs/benchmarks.md \
    --command "make bench  (scripts/bench.sh $build): $build/bench/features_bench"
else
  echo "bench.sh: $build/bench/features_bench not built; skipped" >&2
fi

# What model monitoring costs the request path: the MLP ranker with monitoring off, drift only,
# and drift + a 100% prediction log; replaces its own section.
echo "== model monitoring overhead (bench/monitoring_bench.py)"
/usr/bin/python3 bench/monitoring_bench.py "$build" --out docs/benchmarks.md \
  --command "make bench  (scripts/bench.sh $build): bench/monitoring_bench.py $build"
