#!/usr/bin/python3
"""End-to-end test of flywheel's metrics port against a real Prometheus (Debian's `prometheus`
package): the server answers N inference requests (and M invalid ones), Prometheus scrapes
`/metrics` every second, and PromQL queries return exactly those counts. `promtool check metrics`
must parse the exposition text.

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/prometheus_test.py PATH/TO/flywheel [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from server_util import FlywheelServer, free_port  # noqa: E402

FLYWHEEL = None
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
INSTALL_HINT = "run scripts/install-deps.sh (it installs Debian's prometheus package)"
N_OK = 37    # successful requests
N_BAD = 5    # requests the server refuses (wrong shape)
QUERY_DEADLINE_S = 60


def simple_request(shape=(1, 16)):
    n = shape[0] * shape[1]
    return json.dumps({"inputs": [
        {"name": "INPUT0", "shape": list(shape), "datatype": "INT32", "data": list(range(n))},
        {"name": "INPUT1", "shape": list(shape), "datatype": "INT32", "data": [1] * n},
    ]}).encode()


def http(method, url, body=None, timeout=10):
    """(status, body bytes); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Prometheus:
    """A real Prometheus scraping one target every second, with its storage in a temp folder.
    Always used as a context manager so that the process is killed whatever happens."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="flywheel-prometheus-")
        self.port = free_port()
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: flywheel\n"
                    "    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n"
                    "    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w+")
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def query(self, promql):
        """The instant vector of `promql` as a list of (labels, float value), or None while
        Prometheus is not answering yet."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.output()}")
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            status, body = http("GET", url, timeout=5)
        except OSError:
            return None
        if status != 200:
            return None
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise AssertionError(f"PromQL {promql!r} failed: {doc}")
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def wait_for_value(self, promql, want, deadline_s=QUERY_DEADLINE_S):
        """Polls until `promql` returns one sample equal to `want`; returns the last answer."""
        deadline = time.time() + deadline_s
        last = None
        while time.time() < deadline:
            last = self.query(promql)
            if last is not None and len(last) == 1 and last[0][1] == want:
                return last
            time.sleep(0.25)
        return last


class PrometheusScrape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (PROMETHEUS, PROMTOOL):
            if not os.access(tool, os.X_OK):
                raise AssertionError(f"{tool} is missing: {INSTALL_HINT}")
        cls.repo = tempfile.mkdtemp(prefix="flywheel-repo-")
        shutil.copytree(os.path.join(ROOT, "examples", "models", "simple"),
                        os.path.join(cls.repo, "simple"))
        cls.server = FlywheelServer(FLYWHEEL, ["--model-repository", cls.repo])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
            os.unlink(cls.server.log.name)
        finally:
            shutil.rmtree(cls.repo, ignore_errors=True)

    def test_1_prometheus_counts_the_requests(self):
        url = f"{self.server.http_url}/v2/models/simple/infer"
        for _ in range(N_OK):
            status, body = http("POST", url, simple_request())
            self.assertEqual(status, 200, body)
        for _ in range(N_BAD):
            status, body = http("POST", url, simple_request((1, 8)))
            self.assertEqual(status, 400, body)

        target = f"127.0.0.1:{self.server.metrics_port}"
        with Prometheus(target) as prom:
            up = prom.wait_for_value('up{job="flywheel"}', 1.0)
            self.assertIsNotNone(up, f"prometheus API never answered:\n{prom.output()}")
            self.assertEqual(len(up), 1, f"{up}\n{prom.output()}")
            self.assertEqual(up[0][1], 1.0,
                             f"prometheus cannot scrape {target}: {self.target_error(prom)}")

            q = 'nv_inference_request_success{model="simple"}'
            got = prom.wait_for_value(q, float(N_OK))
            self.assertEqual(len(got or []), 1, f"{q} -> {got}")
            self.assertEqual(got[0][1], N_OK, f"{q} -> {got}")
            self.assertEqual(got[0][0].get("version"), "1", got)
            self.assertEqual(got[0][0].get("job"), "flywheel", got)

            q = 'sum(nv_inference_request_failure{model="simple"})'
            got = prom.wait_for_value(q, float(N_BAD))
            self.assertEqual([v for _, v in got or []], [N_BAD], f"{q} -> {got}")

            # The batch-element counter and the latency histogram agree with the request count.
            q = 'nv_inference_count{model="simple",version="1"}'
            got = prom.wait_for_value(q, float(N_OK))
            self.assertEqual([v for _, v in got or []], [N_OK], f"{q} -> {got}")
            q = ('histogram_quantile(0.5, '
                 'flywheel_inference_request_latency_us_bucket{model="simple",version="1"})')
            got = prom.query(q)
            self.assertEqual(len(got or []), 1, f"{q} -> {got}")
            self.assertGreater(got[0][1], 0, f"{q} -> {got}")

    def test_2_promtool_parses_the_exposition(self):
        status, text = http("GET", self.server.metrics_url)
        self.assertEqual(status, 200)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        # Exit 3 is promtool's lint warnings only (Triton's names such as nv_inference_count
        # break its naming conventions: no _total suffix, "_us" units); anything that does not
        # parse makes it print an error and exit 1.
        self.assertIn(p.returncode, (0, 3), out)
        errors = [l for l in out.splitlines() if "error" in l.lower()]
        self.assertEqual(errors, [], out)
        self.assertIn(b"# TYPE nv_inference_request_success counter", text)
        self.assertIn(b"# TYPE flywheel_inference_request_latency_us histogram", text)

    @staticmethod
    def target_error(prom):
        try:
            _, body = http("GET", f"{prom.url}/api/v1/targets")
            return [t.get("lastError") for t in json.loads(body)["data"]["activeTargets"]]
        except Exception as e:  # best effort, only for the failure message
            return repr(e)


def main():
    global FLYWHEEL
    if len(sys.argv) < 2:
        sys.exit("usage: prometheus_test.py PATH/TO/flywheel [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
