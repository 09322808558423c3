#!/usr/bin/env bash
# `make serve`: serves the example model repository (examples/models/) and feature definitions
# (examples/features/, data in BUILD_DIR/serve-data) with `flywheel serve` on the default ports
# and prints what to try. Ctrl-C (SIGINT) stops it cleanly.
# Usage: scripts/serve.sh BUILD_DIR [extra flywheel serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
flywheel=$build/flywheel
if [[ ! -x $flywheel ]]; then
  echo "serve.sh: $flywheel not found; run 'make build' first" >&2
  exit 1
fi
HTTP_PORT=${HTTP_PORT:-8000}
GRPC_PORT=${GRPC_PORT:-8001}
METRICS_PORT=${METRICS_PORT:-8002}

cat <<EOT
Serving examples/models/ (simple, mlp_ranker, cnn, transformer):
  HTTP (KServe v2)  http://localhost:$HTTP_PORT/v2
  gRPC (KServe v2)  localhost:$GRPC_PORT
  metrics           http://localhost:$METRICS_PORT/metrics
  features          http://localhost:$HTTP_PORT/v1/features/views (examples/features/)

Try, from another terminal:
  curl -s localhost:$HTTP_PORT/v2/models/simple
  curl -s -X POST localhost:$HTTP_PORT/v2/models/simple/infer -d '{"inputs":[
    {"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]},
    {"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}'
  curl -s localhost:$METRICS_PORT/metrics | grep nv_inference_request_success
  curl -s -X POST localhost:$HTTP_PORT/v1/features/push -d '{"source": "clicks", "events": [
    {"user_id": "u1", "item_id": "i7", "ts": '\$((\$(date +%s) - 60))', "page": "home", "dwell": 3.5}]}'
  curl -s -X POST localhost:$HTTP_PORT/v1/features/online -d '{"features": [
    "user_clicks:clicks_1h", "user_clicks:last_page"], "entities": ["u1", "u2"]}'
  $flywheel bench --url http://localhost:$HTTP_PORT --model mlp_ranker --concurrency 1:16

EOT
exec "$flywheel" serve --model-repository examples/models \
  --model-repository examples/feature_models --http-port "$HTTP_PORT" \
  --grpc-port "$GRPC_PORT" --metrics-port "$METRICS_PORT" --features examples/features \
  --data-dir "$build/serve-data" "$@"
