#!/usr/bin/env bash
# Installs every Debian package flywheel needs to build, test and benchmark. Idempotent: packages
# already present are skipped, so a second run costs a dpkg query and nothing else.
#
#   scripts/install-deps.sh           build + test + bench dependencies
#   scripts/install-deps.sh --tools   also the Python packages the fixture generators in tools/ use
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev clang-format
  # core libraries (see ../shared/DESIGN.md, "Dependencies")
  libabsl-dev libprotobuf-dev protobuf-compiler libonnx-dev
  libdnnl-dev libhwy-dev libsleef-dev
  libcli11-dev libspdlog-dev libfmt-dev libzstd-dev
  # features and monitoring: embedded and Redis online stores, feature definitions
  librocksdb-dev libhiredis-dev libyaml-cpp-dev
  # serving: HTTP (Beast), gRPC + protobuf codegen, JSON, tree engine peer
  libboost-dev libgrpc++-dev protobuf-compiler-grpc rapidjson-dev zlib1g-dev libxgboost-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 python3-numpy
  # end-to-end tests and load tests: Python gRPC client, real Prometheus, wrk and nginx peers
  python3-grpcio python3-protobuf python3-requests python3-onnx prometheus wrk nginx-light curl
  # real Redis peer for the feature-store tests and the redis-benchmark baseline
  redis-server redis-tools
  # the zstd command (the prediction-log CLI test writes logs with it)
  zstd
  # aarch64 cross compiler for scripts/check-arm-build.sh (compile-only ARM/NEON check)
  g++-aarch64-linux-gnu libc6-dev-arm64-cross
)
if [[ ${1:-} == --tools ]]; then
  packages+=(python3-torch python3-onnx python3-numpy python3-xgboost)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
