#!/usr/bin/python3
"""End-to-end test of model monitoring on the real `flywheel serve` with the MLP ranker
(examples/models/mlp_ranker, 256 FP32 features -> a score):

  * `flywheel monitor profile` writes the version's profile.json from reference data;
  * unshifted traffic keeps every feature's PSI below 0.2 and a stream whose first 16 features
    shift by 2 standard deviations drives them above it within a bounded number of requests, as
    the JSON endpoint and /metrics say, and a real Prometheus evaluating a test copy of
    deploy/prometheus/alerts.yml fires FlywheelFeatureDrift only after the shift;
  * labels posted to /v1/monitor/labels give the quality figures (MAE, RMSE) a brute force
    computes from the responses, and unknown ids are counted;
  * `flywheel log cat` returns exactly the requests the per-model sampling rate (a config.pbtxt
    parameter) keeps, with their inputs and outputs;
  * after `kill -9`, the log files read back with at least (accepted - queue capacity) records;
  * every posted label lands in the label log, and `flywheel log training-set` joins them with
    the logged requests into exactly the expected rows, split by the documented holdout hash.

Fixed seeds throughout. Usage (from the repository root):
    /usr/bin/python3 tests/e2e/monitoring_test.py PATH/TO/flywheel [unittest args]
"""
import csv
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from server_util import FlywheelServer, free_port  # noqa: E402

FLYWHEEL = None
PROMETHEUS = "/usr/bin/prometheus"
INSTALL_HINT = "run scripts/install-deps.sh (it installs Debian's prometheus package)"
MODEL = "mlp_ranker"
FEATURES = 256
SHIFTED = 16          # features 0..15 shift in the drifting stream
SHIFT = 2.0           # by this many standard deviations
ROWS = 8              # rows per request
SAMPLE_RATE = 0.5     # the model's log_sample_rate parameter
MAX_SHIFTED_REQUESTS = 800  # the bound within which PSI must cross 0.2
DEADLINE_S = 60


# --- HTTP ------------------------------------------------------------------------------------
class Client:
    """A keep-alive HTTP/1.1 connection; returns (status, parsed JSON or text)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode(errors="replace")

    def close(self):
        self.conn.close()


def infer_body(request_id, x):
    return json.dumps({"id": request_id, "inputs": [
        {"name": "features", "shape": list(x.shape), "datatype": "FP32",
         "data": x.ravel().tolist()}]}).encode()


def metrics_text(server):
    c = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def metric_values(text, name, **labels):
    """Values of `name` samples whose labels include `labels`."""
    out = []
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            out.append(float(m.group(2)))
    return out


# --- sampling, as monitor::LogSampler decides it ----------------------------------------------
def id_hash(data):
    """monitor::LogSampler::HashId: FNV-1a 64 over the bytes, then SplitMix64's finalizer."""
    mask = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & mask
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & mask
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & mask
    h ^= h >> 31
    return h


def sampler_hash(request_id):
    return id_hash(request_id.encode())


def sampled(request_id, rate):
    if rate >= 1:
        return True
    threshold = int(rate * 2.0 ** 64)
    return sampler_hash(request_id) < threshold


def in_holdout(request_id, row, fraction):
    """monitor::InHoldout: the id hash over the id and the row's 8 little-endian bytes, the top 53
    bits as a fraction."""
    h = id_hash(request_id.encode() + row.to_bytes(8, "little", signed=True))
    return (h >> 11) / 2.0 ** 53 < fraction


# --- Prometheus ------------------------------------------------------------------------------
class Prometheus:
    """A real Prometheus scraping `target` every second with `rules` evaluated every second."""

    def __init__(self, target, rules_text):
        self.dir = tempfile.mkdtemp(prefix="flywheel-prometheus-")
        self.port = free_port()
        with open(os.path.join(self.dir, "alerts.yml"), "w") as f:
            f.write(rules_text)
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files:\n"
                    "  - alerts.yml\n"
                    "scrape_configs:\n"
                    "  - job_name: flywheel\n"
                    "    scrape_timeout: 1s\n"
                    "    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
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
        """[(labels, value)] or None while Prometheus is not answering yet."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.output()}")
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
            r = c.getresponse()
            doc = json.loads(r.read())
        except (OSError, ValueError):
            return None
        finally:
            c.close()
        if doc.get("status") != "success":
            return None
        return [(s["metric"], float(s["value"][1])) for s in doc["data"]["result"]]

    def wait(self, promql, predicate, deadline_s=DEADLINE_S):
        deadline = time.time() + deadline_s
        last = None
        while time.time() < deadline:
            last = self.query(promql)
            if last is not None and predicate(last):
                return True, last
            time.sleep(0.25)
        return False, last


def test_rules():
    """deploy/prometheus/alerts.yml with every `for:` at 0s, so that one evaluation decides."""
    with open(os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")) as f:
        text = f.read()
    return re.sub(r"(\n\s*for:\s*)\S+", r"\g<1>0s", text)


# --- the test --------------------------------------------------------------------------------
class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(PROMETHEUS, os.X_OK):
            raise AssertionError(f"{PROMETHEUS} is missing: {INSTALL_HINT}")
        cls.tmp = tempfile.mkdtemp(prefix="flywheel-monitoring-")
        cls.repo = os.path.join(cls.tmp, "repo")
        shutil.copytree(os.path.join(ROOT, "examples", "models", MODEL),
                        os.path.join(cls.repo, MODEL))
        with open(os.path.join(cls.repo, MODEL, "config.pbtxt"), "a") as f:
            f.write('parameters { key: "log_sample_rate" value { string_value: "%g" } }\n'
                    'parameters { key: "label_task" value { string_value: "regression" } }\n'
                    % SAMPLE_RATE)
        # Reference data: N(0, 1) features; the profile also runs the model for its score.
        rng = np.random.default_rng(0)
        train = os.path.join(cls.tmp, "train.npy")
        np.save(train, rng.standard_normal((4000, FEATURES), dtype=np.float32))
        p = subprocess.run([FLYWHEEL, "monitor", "profile", "--model-repository", cls.repo,
                            "--model", MODEL, "--data", train], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"flywheel monitor profile failed:\n{p.stdout}{p.stderr}")
        cls.profile = os.path.join(cls.repo, MODEL, "1", "profile.json")
        cls.log_dir = os.path.join(cls.tmp, "log")
        cls.server = FlywheelServer(FLYWHEEL, ["--model-repository", cls.repo,
                                               "--prediction-log-dir", cls.log_dir,
                                               "--label-horizon-secs", "3600"])
        cls.server.start()
        cls.prometheus = Prometheus(f"127.0.0.1:{cls.server.metrics_port}", test_rules())
        cls.client = Client(cls.server.http_port)
        cls.rng = np.random.default_rng(1)
        cls.sent = {}  # request id -> (inputs [ROWS, 256], scores [ROWS])

    @classmethod
    def tearDownClass(cls):
        try:
            cls.client.close()
            cls.prometheus.stop()
            cls.server.stop()
            os.unlink(cls.server.log.name)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def infer(self, request_id, shift=0.0):
        x = self.rng.standard_normal((ROWS, FEATURES), dtype=np.float32)
        x[:, :SHIFTED] += np.float32(shift)
        status, body = self.client.call("POST", f"/v2/models/{MODEL}/infer",
                                        infer_body(request_id, x))
        self.assertEqual(status, 200, body)
        scores = np.array(body["outputs"][0]["data"], dtype=np.float32)
        self.assertEqual(scores.shape, (ROWS,))
        self.sent[request_id] = (x, scores)

    def drift(self):
        status, body = self.client.call("GET", f"/v1/monitor/models/{MODEL}/drift")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["versions"]), 1, body)
        return body["versions"][0]

    def psi_by_feature(self, report):
        return {f["name"]: f["psi"] for f in report["features"]}

    def test_1_profile_and_drift(self):
        self.assertTrue(os.path.exists(self.profile))
        with open(self.profile) as f:
            profile = json.load(f)
        names = [f["name"] for f in profile["features"]]
        self.assertEqual(len(names), FEATURES + 1)  # the inputs and the score
        self.assertIn("features[0]", names)
        self.assertIn("score", names)

        # Unshifted traffic: enough rows for figures, every PSI below 0.2.
        n = 0
        while True:
            for _ in range(50):
                self.infer(f"a-{n}")
                n += 1
            report = self.drift()
            if report["window"]["rows"] >= 2000 or n >= 2000:
                break
        self.assertTrue(report["has_profile"], report)
        psi = self.psi_by_feature(report)
        self.assertEqual(len(psi), FEATURES + 1)
        self.assertTrue(all(v is not None for v in psi.values()), report["window"])
        self.assertLess(max(psi.values()), 0.2, sorted(psi.items(), key=lambda kv: -kv[1])[:5])
        self.assertEqual(report["drifted_features"], 0)
        self.assertEqual(report["settings"]["log_sample_rate"], SAMPLE_RATE)
        text = metrics_text(self.server)
        gauges = metric_values(text, "flywheel_feature_drift_psi", model=MODEL, version="1")
        self.assertEqual(len(gauges), FEATURES + 1)
        self.assertLess(max(gauges), 0.2)

        # Prometheus scrapes the server and evaluates the rules: nothing fires yet.
        ok, last = self.prometheus.wait(
            f'count(flywheel_feature_drift_psi{{model="{MODEL}"}})',
            lambda r: len(r) == 1 and r[0][1] == FEATURES + 1)
        self.assertTrue(ok, f"Prometheus never scraped the drift gauges: {last}\n"
                            f"{self.prometheus.output()}")
        time.sleep(3)  # a few evaluations of the rules on the scraped values
        firing = self.prometheus.query('ALERTS{alertname="FlywheelFeatureDrift"}')
        self.assertEqual(firing, [], firing)

        # The shifted stream: PSI of the shifted features crosses 0.2 within the bound.
        crossed_after = None
        for n in range(MAX_SHIFTED_REQUESTS):
            self.infer(f"b-{n}", shift=SHIFT)
            if n % 25 == 24:
                psi = self.psi_by_feature(self.drift())
                if all(psi[f"features[{j}]"] >= 0.2 for j in range(SHIFTED)):
                    crossed_after = n + 1
                    break
        self.assertIsNotNone(crossed_after,
                             f"PSI still below 0.2 after {MAX_SHIFTED_REQUESTS} shifted requests: "
                             f"{[psi[f'features[{j}]'] for j in range(SHIFTED)]}")
        print(f"\n  PSI of the {SHIFTED} shifted features crossed 0.2 after {crossed_after} "
              f"requests ({crossed_after * ROWS} rows)", file=sys.stderr)
        report = self.drift()
        self.assertGreaterEqual(report["drifted_features"], SHIFTED)
        unshifted = [v for k, v in self.psi_by_feature(report).items()
                     if k.startswith("features[") and int(k[9:-1]) >= SHIFTED]
        self.assertLess(max(unshifted), 0.2)
        text = metrics_text(self.server)
        self.assertGreaterEqual(
            metric_values(text, "flywheel_feature_drift_psi", model=MODEL,
                          feature="features[0]")[0], 0.2)
        self.assertGreaterEqual(
            metric_values(text, "flywheel_drift_features_drifted", model=MODEL)[0], SHIFTED)

        # ... and the drift alert fires, for the shifted features only.
        ok, last = self.prometheus.wait(
            f'count(ALERTS{{alertname="FlywheelFeatureDrift",alertstate="firing",'
            f'model="{MODEL}"}})', lambda r: len(r) == 1 and r[0][1] >= SHIFTED)
        self.assertTrue(ok, f"FlywheelFeatureDrift did not fire: {last}\n{self.prometheus.output()}")
        features = {labels["feature"] for labels, _ in self.prometheus.query(
            'ALERTS{alertname="FlywheelFeatureDrift",alertstate="firing"}')}
        self.assertTrue({f"features[{j}]" for j in range(SHIFTED)} <= features, features)
        self.assertFalse(any(f.startswith("features[") and int(f[9:-1]) >= SHIFTED
                             for f in features), features)

    def test_2_labels_and_quality(self):
        self.assertTrue(self.sent, "test_1 sends the requests")
        # Labels for every row of the first 100 requests and row 3 of the next 50; a label is a
        # noisy function of the request, so that MAE and RMSE are not trivial.
        labels, pairs = [], []
        ids = sorted(self.sent)[:150]
        for k, request_id in enumerate(ids):
            x, scores = self.sent[request_id]
            rows = range(ROWS) if k < 100 else [3]
            for row in rows:
                label = float(np.round(x[row, :4].sum() * 0.25, 3))
                labels.append({"id": request_id, "row": row, "label": label})
                pairs.append((float(scores[row]), label))
        unknown = [{"id": f"never-sent-{i}", "label": 1.0} for i in range(7)]
        status, body = self.client.call("POST", "/v1/monitor/labels",
                                        {"labels": labels + unknown})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["received"], len(labels) + len(unknown))
        self.assertEqual(body["joined"], len(labels))
        self.assertEqual(body["unknown"], len(unknown))
        # Sent again: every one is a duplicate now.
        status, body = self.client.call("POST", "/v1/monitor/labels", {"labels": labels[:10]})
        self.assertEqual((status, body["duplicate"], body["joined"]), (200, 10, 0), body)
        # A malformed item refuses the whole request and says where.
        status, body = self.client.call("POST", "/v1/monitor/labels",
                                        {"labels": [labels[0], {"id": "x", "label": "high"}]})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["errors"][0]["index"], 1, body)

        # Brute force over the joined pairs (float32 predictions, as the model returned them).
        p = np.array([a for a, _ in pairs], dtype=np.float64)
        y = np.array([b for _, b in pairs], dtype=np.float64)
        mae = float(np.mean(np.abs(p - y)))
        rmse = float(np.sqrt(np.mean((p - y) ** 2)))
        status, body = self.client.call("GET", f"/v1/monitor/models/{MODEL}/quality")
        self.assertEqual(status, 200, body)
        q = body["versions"][0]
        self.assertEqual(q["task"], "regression")
        self.assertEqual(q["pairs"], len(pairs))
        self.assertAlmostEqual(q["mae"], mae, delta=1e-9 * max(1.0, mae))
        self.assertAlmostEqual(q["rmse"], rmse, delta=1e-9 * max(1.0, rmse))
        self.assertAlmostEqual(q["label_mean"], float(np.mean(y)), delta=1e-9)
        self.assertIsNone(q["accuracy"])
        text = metrics_text(self.server)
        self.assertAlmostEqual(metric_values(text, "flywheel_model_mae", model=MODEL)[0], mae,
                               delta=1e-9 * max(1.0, mae))
        self.assertEqual(metric_values(text, "flywheel_model_quality_pairs", model=MODEL)[0],
                         len(pairs))
        self.assertEqual(metric_values(text, "flywheel_labels_total", outcome="unknown")[0],
                         len(unknown))
        self.assertEqual(metric_values(text, "flywheel_labels_total", outcome="duplicate")[0], 10)

    def test_3_log_cat_returns_the_sampled_requests(self):
        self.assertTrue(self.sent, "test_1 sends the requests")
        expected = {i for i in self.sent if sampled(i, SAMPLE_RATE)}
        self.assertTrue(0.4 * len(self.sent) < len(expected) < 0.6 * len(self.sent))
        # The writer flushes every second: wait until everything accepted is written.
        deadline = time.time() + DEADLINE_S
        while time.time() < deadline:
            text = metrics_text(self.server)
            written = metric_values(text, "flywheel_prediction_log_written_total")
            if written and written[0] >= len(expected):
                break
            time.sleep(0.2)
        self.assertEqual(metric_values(text, "flywheel_prediction_log_written_total"),
                         [len(expected)])
        self.assertEqual(metric_values(text, "flywheel_prediction_log_dropped_total"), [0])
        p = subprocess.run([FLYWHEEL, "log", "cat", "--log-dir", self.log_dir, "--model", MODEL],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        records = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual({r["id"] for r in records}, expected)
        self.assertEqual(len(records), len(expected))
        times = [r["time"] for r in records]
        self.assertEqual(times, sorted(times))
        for r in records[:50]:
            x, scores = self.sent[r["id"]]
            self.assertEqual((r["model"], r["version"]), (MODEL, 1))
            got = r["inputs"]["features"]
            self.assertEqual(got["shape"], [ROWS, FEATURES])
            np.testing.assert_array_equal(np.array(got["data"], dtype=np.float32), x.ravel())
            np.testing.assert_array_equal(
                np.array(r["outputs"]["score"]["data"], dtype=np.float32), scores)

    def test_4_kill_9_leaves_readable_logs(self):
        """A second server logging every request through a small queue, killed right after its
        last answer, with records still in the queue and the writer's buffers."""
        capacity = 256
        repo = os.path.join(self.tmp, "repo-kill")
        shutil.copytree(os.path.join(ROOT, "examples", "models", MODEL),
                        os.path.join(repo, MODEL))
        log_dir = os.path.join(self.tmp, "log-kill")
        server = FlywheelServer(FLYWHEEL, ["--model-repository", repo,
                                           "--prediction-log-dir", log_dir,
                                           "--log-queue-capacity", str(capacity)])
        server.start()
        try:
            rng = np.random.default_rng(2)
            bodies = [infer_body(f"k-{i}", rng.standard_normal((1, FEATURES), dtype=np.float32))
                      for i in range(3000)]
            answered = [0] * 4

            def send(part):
                c = Client(server.http_port)
                for body in bodies[part::4]:
                    status, _ = c.call("POST", f"/v2/models/{MODEL}/infer", body)
                    answered[part] += status == 200
                c.close()

            threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # Every answered request was offered to the log before its answer was sent.
            dropped = metric_values(metrics_text(server),
                                    "flywheel_prediction_log_dropped_total")[0]
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=30)
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
            os.unlink(server.log.name)
        accepted = sum(answered) - dropped
        self.assertEqual(sum(answered), len(bodies))
        p = subprocess.run([FLYWHEEL, "log", "cat", "--log-dir", log_dir],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = [json.loads(line)["id"] for line in p.stdout.splitlines()]
        print(f"\n  kill -9: {sum(answered)} answered, {int(dropped)} dropped by the full queue, "
              f"{len(ids)} records read back (at least {int(accepted) - capacity} required)",
              file=sys.stderr)
        self.assertEqual(len(ids), len(set(ids)))
        self.assertTrue(set(ids) <= {f"k-{i}" for i in range(len(bodies))})
        self.assertGreaterEqual(len(ids), accepted - capacity, p.stderr)

    def test_5_training_set_from_the_label_log(self):
        """test_2's labels, from the label log, joined with the logged requests."""
        self.assertTrue(self.sent, "test_1 sends the requests")
        expected = {}  # (id, row) -> (label, features)
        posted = 7 + 10  # test_2's unknown ids and its duplicates are logged too
        for k, request_id in enumerate(sorted(self.sent)[:150]):
            x, _ = self.sent[request_id]
            rows = range(ROWS) if k < 100 else [3]
            for row in rows:
                posted += 1
                if sampled(request_id, SAMPLE_RATE):
                    expected[(request_id, row)] = (float(np.round(x[row, :4].sum() * 0.25, 3)),
                                                   x[row])
        deadline = time.time() + DEADLINE_S
        while time.time() < deadline:
            text = metrics_text(self.server)
            written = metric_values(text, "flywheel_label_log_records_total", outcome="written")
            if written and written[0] >= posted:
                break
            time.sleep(0.2)
        self.assertEqual(written, [posted])
        self.assertEqual(
            metric_values(text, "flywheel_label_log_records_total", outcome="dropped"), [0])
        self.assertTrue(os.path.isdir(os.path.join(self.log_dir, ".labels")))

        train = os.path.join(self.tmp, "train.csv")
        holdout = os.path.join(self.tmp, "holdout.csv")
        p = subprocess.run([FLYWHEEL, "log", "training-set", "--log-dir", self.log_dir,
                            "--model", MODEL, "--version", "1", "--holdout", "0.25",
                            "--train", train, "--holdout-out", holdout],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        stats = {k: int(v) for k, v in (line.split() for line in p.stdout.splitlines())}
        logged = sum(1 for i in self.sent if sampled(i, SAMPLE_RATE))
        self.assertEqual(stats["predictions"], logged)
        self.assertEqual(stats["labels"], posted)
        self.assertEqual(stats["unlabelled_rows"], logged * ROWS - len(expected))
        self.assertEqual(stats["feature_columns"], FEATURES)
        self.assertEqual(stats["bad_lines"], 0)
        self.assertEqual(stats["train_rows"] + stats["holdout_rows"], len(expected))
        seen = set()
        for path, is_holdout in ((train, False), (holdout, True)):
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            self.assertEqual(rows[0][:5], ["id", "row", "time", "version", "label"])
            self.assertEqual(rows[0][5:], [f"features:{j}" for j in range(FEATURES)])
            self.assertEqual(len(rows) - 1, stats["holdout_rows" if is_holdout else "train_rows"])
            for r in rows[1:]:
                key = (r[0], int(r[1]))
                self.assertIn(key, expected)
                self.assertNotIn(key, seen)
                seen.add(key)
                self.assertEqual(in_holdout(r[0], int(r[1]), 0.25), is_holdout, key)
                self.assertEqual(r[3], "1")
                label, features = expected[key]
                self.assertEqual(float(r[4]), label)
                np.testing.assert_array_equal(np.array(r[5:], dtype=np.float32), features)
        self.assertEqual(len(seen), len(expected))


def main():
    global FLYWHEEL
    if len(sys.argv) < 2:
        sys.exit("usage: monitoring_test.py PATH/TO/flywheel [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
