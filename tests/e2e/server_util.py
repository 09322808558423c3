"""Starts the real `flywheel serve` binary on free loopback ports for end-to-end tests.

    with FlywheelServer(binary, ["--model-repository", repo]) as srv:
        requests.get(srv.http_url + "/v2/health/ready")
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FlywheelServer:
    def __init__(self, binary, args, wait_ready=True, timeout=60):
        self.binary = binary
        self.args = list(args)
        self.wait_ready = wait_ready
        self.timeout = timeout
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="flywheel-serve-", suffix=".log", delete=False)

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self):
        cmd = [self.binary, "serve", "--bind", "127.0.0.1",
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port)] + self.args
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        if self.wait_ready:
            self.wait_until("/v2/health/ready")
        else:
            self.wait_until("/v2/health/live")
        return self

    def wait_until(self, path):
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flywheel serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.http_url + path, timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"flywheel serve not at {path} after {self.timeout}s:\n{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"flywheel serve ignored {sig} for {timeout}s:\n{self.output()}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        os.unlink(self.log.name)


def copy_repository(src, dst_parent=None):
    """A private copy of a model repository that a test may modify."""
    dst = tempfile.mkdtemp(prefix="flywheel-repo-", dir=dst_parent)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst
