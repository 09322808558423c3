"""Generates Python gRPC stubs from flywheel's own .proto files for the end-to-end tests.

Uses Debian's protoc and grpc_python_plugin (never grpc_tools), so the stubs match the
installed python3-protobuf and python3-grpcio.

    modules = load_stubs("/path/to/proto")   # {"grpc_service_pb2": module, ...}
    /usr/bin/python3 tests/e2e/gen_grpc_stubs.py proto/ OUT_DIR    # just write them
"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

PROTOS = ("model_config.proto", "grpc_service.proto", "health.proto")


def _tool(name, fallback):
    path = shutil.which(name) or fallback
    if not os.path.exists(path):
        raise RuntimeError(f"{name} not found; install protobuf-compiler and protobuf-compiler-grpc")
    return path


def generate(proto_dir, out_dir):
    """Writes <name>_pb2.py and <name>_pb2_grpc.py for each proto into out_dir."""
    protoc = _tool("protoc", "/usr/bin/protoc")
    plugin = _tool("grpc_python_plugin", "/usr/bin/grpc_python_plugin")
    cmd = [protoc, f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_out={out_dir}",
           f"--plugin=protoc-gen-grpc={plugin}"] + [os.path.join(proto_dir, p) for p in PROTOS]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({' '.join(cmd)}):\n{result.stderr}")


def load_stubs(proto_dir):
    """Generates the stubs into a fresh temporary directory and imports them."""
    out_dir = tempfile.mkdtemp(prefix="flywheel-grpc-stubs-")
    generate(proto_dir, out_dir)
    sys.path.insert(0, out_dir)
    names = [p[:-len(".proto")] for p in PROTOS]
    modules = {}
    for name in names:
        modules[f"{name}_pb2"] = importlib.import_module(f"{name}_pb2")
        if name != "model_config":
            modules[f"{name}_pb2_grpc"] = importlib.import_module(f"{name}_pb2_grpc")
    return modules


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gen_grpc_stubs.py PROTO_DIR OUT_DIR")
    os.makedirs(sys.argv[2], exist_ok=True)
    generate(sys.argv[1], sys.argv[2])
