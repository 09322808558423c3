#!/usr/bin/python3
"""End-to-end test of model reloads and shutdown against the real `flywheel serve` binary:

- poll mode (`--model-control-mode poll --repository-poll-secs 1`) on a private repository while
  clients send requests over HTTP keep-alive without pause: a new version folder, a changed
  config.pbtxt and removed version folders are picked up with zero failed requests, and the
  serving version (`model_version` in each response) only moves forward;
- a model added at runtime becomes available, a removed one unknown (404);
- a model file or config.pbtxt broken at reload leaves the old version serving, with the reason
  in the repository index;
- SIGTERM with requests in flight: each of them is answered 200, later ones are refused cleanly
  (503 or a closed connection), and the process exits 0 within --exit-timeout-secs.

Every change to the repository is made atomically (prepared beside it, then renamed into place),
as a deployment tool would, so that a poll never sees a half-written file.

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/reload_test.py PATH/TO/flywheel [unittest args]
"""
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from server_util import FlywheelServer  # noqa: E402

FLYWHEEL = None
SIMPLE = os.path.join(ROOT, "examples", "models", "simple")
POLL_ARGS = ["--model-control-mode", "poll", "--repository-poll-secs", "1"]
# How long a poll-mode change may take to show (many poll rounds on a busy 2-core machine).
CHANGE_DEADLINE_S = 60
CLIENTS = 2

A = list(range(16))
B = [3] * 16
BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": A},
    {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": B},
]}).encode()
WANT = {"OUTPUT0": [a + b for a, b in zip(A, B)], "OUTPUT1": [a - b for a, b in zip(A, B)]}
NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, OSError)


def wait_for(what, predicate, deadline_s=CHANGE_DEADLINE_S):
    """Polls `predicate` until it returns a true value, which it returns."""
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")


class Client(threading.Thread):
    """Sends `simple` inference requests back to back on one keep-alive connection and records
    every outcome: the model version of each 200, and anything else as a failure."""

    def __init__(self, port, model="simple", stop_on_error=False):
        super().__init__(daemon=True)
        self.port = port
        self.path = f"/v2/models/{model}/infer"
        self.stop_on_error = stop_on_error
        self.stop = threading.Event()
        self.versions = []       # model_version of each successful response, in order
        self.failures = []       # descriptions of failed requests
        self.refused = 0         # clean refusals (503) seen after stop_on_error
        self.connection_errors = 0
        self.sent_at = None      # when the request now waiting for its answer was sent
        self.lock = threading.Lock()

    def count(self, version=None):
        with self.lock:
            return len(self.versions) if version is None else self.versions.count(version)

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            try:
                self.sent_at = time.time()
                conn.request("POST", self.path, BODY, {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                self.sent_at = None
            except NETWORK_ERRORS as e:
                if self.stop_on_error:
                    # After SIGTERM a connection may be closed between requests: not an answer.
                    self.connection_errors += 1
                    return
                with self.lock:
                    self.failures.append(f"connection error: {e!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            self.record(r.status, body)
            if self.stop_on_error and r.status != 200:
                return
        conn.close()

    def record(self, status, body):
        with self.lock:
            if status == 503 and self.stop_on_error:
                self.refused += 1
                return
            if status != 200:
                self.failures.append(f"HTTP {status}: {body[:300]!r}")
                return
            try:
                doc = json.loads(body)
                outs = {o["name"]: o["data"] for o in doc["outputs"]}
            except (ValueError, KeyError, TypeError) as e:
                self.failures.append(f"bad response {e!r}: {body[:300]!r}")
                return
            if outs != WANT:
                self.failures.append(f"wrong outputs: {body[:300]!r}")
                return
            self.versions.append(doc.get("model_version"))


class Api:
    """Small blocking helpers for the admin side of the test (one connection per call)."""

    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body, headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def index(self):
        status, body = self.call("POST", "/v2/repository/index", b"{}")
        assert status == 200, body
        return json.loads(body)

    def infer(self, model):
        return self.call("POST", f"/v2/models/{model}/infer", BODY)


class Repo:
    """A private model repository with a staging folder on the same file system, so that every
    change lands with one rename."""

    def __init__(self, models):
        self.base = tempfile.mkdtemp(prefix="flywheel-reload-")
        self.path = os.path.join(self.base, "repo")
        self.staging = os.path.join(self.base, "staging")
        os.makedirs(self.path)
        os.makedirs(self.staging)
        for name in models:
            self.add_model(name, staged=False)

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def _stage(self, name):
        return tempfile.mkdtemp(prefix=name + "-", dir=self.staging)

    def add_model(self, name, staged=True):
        """A copy of examples/models/simple named `name`."""
        dst = os.path.join(self._stage(name), name) if staged else os.path.join(self.path, name)
        shutil.copytree(SIMPLE, dst)
        cfg = os.path.join(dst, "config.pbtxt")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace('name: "simple"', f'name: "{name}"'))
        if staged:
            os.rename(dst, os.path.join(self.path, name))

    def remove(self, *parts):
        """Moves a model or version folder out of the repository, then deletes it."""
        gone = os.path.join(self._stage("removed"), "x")
        os.rename(os.path.join(self.path, *parts), gone)
        shutil.rmtree(gone)

    def add_version(self, model, version, from_version):
        tmp = os.path.join(self._stage(model), str(version))
        shutil.copytree(os.path.join(self.path, model, str(from_version)), tmp)
        os.rename(tmp, os.path.join(self.path, model, str(version)))

    def write(self, rel, data):
        tmp = os.path.join(self._stage("file"), "f")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.path, rel))

    def read(self, rel):
        with open(os.path.join(self.path, rel), "rb") as f:
            return f.read()


class PollServerTest(unittest.TestCase):
    models = ["simple"]

    def setUp(self):
        self.repo = Repo(self.models)
        self.server = FlywheelServer(FLYWHEEL, ["--model-repository", self.repo.path] + POLL_ARGS)
        self.server.start()
        self.api = Api(self.server.http_port)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.stop.set()
        for c in self.clients:
            c.join(timeout=30)
        try:
            self.assertEqual(self.server.stop(), 0, self.server.output())
        finally:
            os.unlink(self.server.log.name)
            self.repo.cleanup()

    def start_clients(self, model="simple", n=CLIENTS):
        self.clients = [Client(self.server.http_port, model) for _ in range(n)]
        for c in self.clients:
            c.start()

    def served(self, version):
        """True once every client has had `version` answer a request."""
        return all(c.count(version) > 0 for c in self.clients)

    def keep_serving(self, requests_each=20):
        """Waits until every client has had `requests_each` more successful responses."""
        base = [c.count() for c in self.clients]
        wait_for(f"{requests_each} more responses per client",
                 lambda: all(c.count() >= b + requests_each for c, b in zip(self.clients, base)))

    def config(self, model):
        status, body = self.api.call("GET", f"/v2/models/{model}/config")
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def index_rows(self, model):
        return [row for row in self.api.index() if row["name"] == model]

    def assert_no_failures(self):
        for c in self.clients:
            self.assertEqual(c.failures[:5], [], f"{len(c.failures)} failed requests\n"
                             + self.server.output()[-3000:])


class RollingReload(PollServerTest):
    def test_versions_and_config_change_under_load_with_zero_failures(self):
        self.start_clients()
        wait_for("version 1 to answer", lambda: self.served("1"))

        # A new version: the default version (latest) moves to 2 once it is loaded.
        self.repo.add_version("simple", 2, from_version=1)
        wait_for("version 2 to answer", lambda: self.served("2"))
        self.keep_serving()

        # A changed config.pbtxt reloads the served version with the new configuration.
        cfg = self.repo.read("simple/config.pbtxt").decode()
        self.repo.write("simple/config.pbtxt",
                        (cfg + "dynamic_batching { max_queue_delay_microseconds: 150 }\n").encode())
        wait_for("the dynamic_batching config to be served",
                 lambda: self.config("simple").get("dynamic_batching", {})
                 .get("max_queue_delay_microseconds") == 150)
        self.keep_serving()

        # Version folder 1 goes away (it was no longer served): a reload, no disruption.
        self.repo.remove("simple", "1")
        time.sleep(3)  # three poll rounds
        self.keep_serving()

        # Version 3 arrives and version 2 leaves in the same poll round.
        self.repo.add_version("simple", 3, from_version=2)
        self.repo.remove("simple", "2")
        wait_for("version 3 to answer", lambda: self.served("3"))
        self.keep_serving()
        wait_for("only version 3 in the index",
                 lambda: [(r.get("version", ""), r["state"]) for r in self.index_rows("simple")]
                 == [("3", "READY")])

        for c in self.clients:
            c.stop.set()
        for c in self.clients:
            c.join(timeout=30)
        self.assert_no_failures()
        for c in self.clients:
            # Each client saw every version, in order: once a newer version answered, an older
            # one never answered that client again.
            order = [v for i, v in enumerate(c.versions) if i == 0 or c.versions[i - 1] != v]
            self.assertEqual(order, ["1", "2", "3"], order)
        status, body = self.api.call("GET", "/v2/models/simple/versions/1")
        self.assertEqual(status, 404, body)


class AddRemoveAndBroken(PollServerTest):
    models = ["simple", "keeper"]

    def test_model_added_at_runtime_becomes_available_and_removed_becomes_unknown(self):
        self.start_clients()  # the other models keep serving throughout
        status, _ = self.api.infer("added")
        self.assertEqual(status, 404)
        self.repo.add_model("added")
        wait_for("the added model to be ready",
                 lambda: self.api.call("GET", "/v2/models/added/ready")[0] == 200)
        status, body = self.api.infer("added")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["model_name"], "added")
        self.assertEqual([(r.get("version", ""), r["state"]) for r in self.index_rows("added")],
                         [("1", "READY")])

        self.repo.remove("added")
        wait_for("the removed model to be unknown", lambda: self.api.infer("added")[0] == 404)
        status, body = self.api.infer("added")
        self.assertEqual(status, 404, body)
        self.assertIn("added", json.loads(body)["error"])
        self.assertEqual(self.api.call("GET", "/v2/models/added")[0], 404)
        self.assertEqual(self.index_rows("added"), [])
        self.keep_serving()
        self.assert_no_failures()

    def test_broken_model_file_at_reload_keeps_the_old_version_serving(self):
        self.start_clients(model="keeper")
        wait_for("keeper to answer", lambda: self.served("1"))
        self.repo.write("keeper/1/model.onnx", b"this is not an ONNX model")

        def reload_failed():
            rows = self.index_rows("keeper")
            return rows if any("reload failed" in r.get("reason", "") for r in rows) else None
        rows = wait_for("the failed reload in the index", reload_failed)
        self.assertEqual([(r.get("version", ""), r["state"]) for r in rows], [("1", "READY")], rows)
        self.assertIn("previous load still serving", rows[0]["reason"])
        self.assertEqual(self.api.call("GET", "/v2/models/keeper/ready")[0], 200)
        self.keep_serving()
        self.assert_no_failures()

    def test_broken_config_at_reload_keeps_the_old_version_serving(self):
        self.start_clients(model="keeper")
        wait_for("keeper to answer", lambda: self.served("1"))
        cfg = self.repo.read("keeper/config.pbtxt")
        self.repo.write("keeper/config.pbtxt", cfg + b"\nmax_batch_size: many\n")

        def unavailable_reason():
            rows = self.index_rows("keeper")
            return rows if any(r["state"] == "UNAVAILABLE" for r in rows) else None
        rows = wait_for("the broken config in the index", unavailable_reason)
        bad = [r for r in rows if r["state"] == "UNAVAILABLE"]
        self.assertEqual(len(bad), 1, rows)
        self.assertIn("config.pbtxt", bad[0]["reason"])
        self.assertIn("max_batch_size", bad[0]["reason"])
        self.assertIn(("1", "READY"), [(r.get("version", ""), r["state"]) for r in rows])
        self.keep_serving()
        self.assert_no_failures()

        # Fixing the file loads it again, and the failure leaves the index.
        self.repo.write("keeper/config.pbtxt", cfg)
        wait_for("the fixed config to load",
                 lambda: [(r.get("version", ""), r["state"]) for r in self.index_rows("keeper")]
                 == [("1", "READY")])
        self.keep_serving()
        self.assert_no_failures()


class Sigterm(unittest.TestCase):
    """SIGTERM while every client has a request waiting in the dynamic batcher's queue."""
    QUEUE_DELAY_US = 300000
    EXIT_TIMEOUT_S = 10

    def test_requests_in_flight_finish_and_the_server_exits_0(self):
        repo = Repo(["slow"])
        cfg = repo.read("slow/config.pbtxt").decode()
        # The batcher holds each batch for 300 ms (the preferred size is never reached by the
        # clients), so that requests are surely in flight when the signal arrives.
        repo.write("slow/config.pbtxt", (cfg + "dynamic_batching { preferred_batch_size: [ 8 ] "
                   f"max_queue_delay_microseconds: {self.QUEUE_DELAY_US} }}\n").encode())
        server = FlywheelServer(FLYWHEEL, ["--model-repository", repo.path,
                                           "--exit-timeout-secs", str(self.EXIT_TIMEOUT_S)])
        clients = [Client(server.http_port, "slow", stop_on_error=True) for _ in range(4)]
        try:
            server.start()
            for c in clients:
                c.start()
            wait_for("two batches per client", lambda: all(c.count() >= 2 for c in clients))
            # Mid-way through a queue delay: every client has a request waiting.
            time.sleep(self.QUEUE_DELAY_US / 2e6)
            before = [c.count() for c in clients]
            sent = time.time()
            server.proc.send_signal(signal.SIGTERM)
            # Requests sent well before the signal (so surely read by the server) and not
            # answered yet: each must be answered 200.
            sent_at = [c.sent_at for c in clients]
            waiting = [i for i, t in enumerate(sent_at) if t is not None and sent - t > 0.05]
            code = server.proc.wait(timeout=self.EXIT_TIMEOUT_S + 20)
            took = time.time() - sent
            for c in clients:
                c.join(timeout=30)
                self.assertFalse(c.is_alive())
            out = server.output()
            self.assertEqual(code, 0, out)
            self.assertLess(took, self.EXIT_TIMEOUT_S + 5, out)
            self.assertIn("SIGTERM received", out)
            self.assertNotIn("still in flight", out)
            for c in clients:
                self.assertEqual(c.failures, [], out[-3000:])
            self.assertGreater(len(waiting), 0, "no request was in flight at the signal")
            for i in waiting:
                self.assertEqual(clients[i].count(), before[i] + 1,
                                 f"client {i}: its request in flight at SIGTERM got no 200\n"
                                 + out[-3000:])
            # Nothing is listening any more.
            with self.assertRaises(OSError):
                Api(server.http_port).call("GET", "/v2/health/live")
        finally:
            for c in clients:
                c.stop.set()
            server.stop(signal.SIGKILL)
            os.unlink(server.log.name)
            repo.cleanup()


def main():
    global FLYWHEEL
    if len(sys.argv) < 2:
        sys.exit("usage: reload_test.py PATH/TO/flywheel [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
