#!/usr/bin/env python3
"""The retraining loop end to end, on the example tree model (fraud_trees) served by a real
`flywheel serve`, with requests flowing the whole time:

1. Traffic drifts to a new concept and its labels arrive; the label trigger starts a run that
   exports the labelled predictions, trains with examples/loops/train_fraud.py (Debian's
   python3-xgboost), beats the champion on the holdout, runs a canary and is promoted. No request
   fails.
2. A run whose training makes a weak model (one stump) is stopped at the gate; its version leaves
   the repository and production is untouched. No request fails.
3. A run whose candidate starts failing during its canary (its model disappears from the
   repository: a bad deploy) is rolled back automatically; production is untouched.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_util import FlywheelServer, copy_repository  # noqa: E402

FLYWHEEL = None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "fraud_trees"
LOOP = "fraud-retrain"


def call(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def infer_body(rows, request_id=None):
    body = {"inputs": [{"name": "input__0", "shape": list(rows.shape), "datatype": "FP32",
                        "data": [None if np.isnan(v) else float(v) for v in rows.ravel()]}]}
    if request_id is not None:
        body["id"] = request_id
    return body


# The drifted concepts the champion (trained on x0 + 0.5 x1 x2 - 0.3 x3) knows nothing about.
def concept_a(x):
    return (x[:, 5] - x[:, 6] + 0.5 * x[:, 7] > 0).astype(np.float32)


def concept_b(x):
    return (x[:, 8] + x[:, 9] - 0.5 * x[:, 10] > 0).astype(np.float32)


class Traffic(threading.Thread):
    """Unversioned requests without labels, as fast as one client goes, counting the answers."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.rng = np.random.default_rng(99)
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []  # (time, status, error)
        self.versions = {}
        self.paused = threading.Event()
        self.stopped = threading.Event()

    def run(self):
        n = 0
        while not self.stopped.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            n += 1
            x = self.rng.normal(size=(1, 16)).astype(np.float32)
            status, reply = call("POST", f"{self.url}/v2/models/{MODEL}/infer",
                                 infer_body(x, f"bg-{n}"))
            with self.lock:
                if status == 200:
                    self.ok += 1
                    v = reply.get("model_version")
                    self.versions[v] = self.versions.get(v, 0) + 1
                else:
                    self.failures.append((time.time(), status, reply.get("error", "")))

    def snapshot(self):
        with self.lock:
            return self.ok, list(self.failures), dict(self.versions)


class LoopTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="flywheel-loop-")
        self.repo = copy_repository(os.path.join(ROOT, "examples", "models", MODEL), self.tmp)
        # copy_repository copies the model folder's contents: put them back under the model name.
        model_dir = os.path.join(self.repo, MODEL)
        os.makedirs(model_dir)
        for entry in os.listdir(self.repo):
            if entry != MODEL:
                shutil.move(os.path.join(self.repo, entry), model_dir)
        self.model_dir = model_dir
        # The training command: the example script, or a weak one-stump model when the test says.
        self.mode_file = os.path.join(self.tmp, "mode")
        with open(self.mode_file, "w") as f:
            f.write("good")
        loops = os.path.join(self.tmp, "loops")
        os.makedirs(loops)
        wrapper = os.path.join(loops, "train.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    f"mode=$(cat {self.mode_file})\n"
                    "if [ \"$mode\" = fail ]; then echo 'no GPU found' >&2; exit 3; fi\n"
                    "if [ \"$mode\" = weak ]; then extra='--trees 1 --depth 1'; fi\n"
                    f"exec /usr/bin/python3 {ROOT}/examples/loops/train_fraud.py "
                    "--train \"$1\" --out \"$2\" $extra\n")
        os.chmod(wrapper, 0o755)
        with open(os.path.join(loops, "fraud.yaml"), "w") as f:
            f.write(f"""
name: {LOOP}
model: {MODEL}
trigger:
  new_labels: 400
  min_interval: 1s
data:
  window: 1h
  holdout: 0.3
  min_rows: 300
train:
  command: ["./train.sh", "{{train}}", "{{output}}/xgboost.json"]
  timeout: 2m
  model_file: xgboost.json
evaluate:
  metric: auc
  margin: 0.02
rollout:
  policy: canary
  weight: 0.3
  healthy_for: 4s
  min_requests: 40
  max_error_rate: 0.05
""")
        self.server = FlywheelServer(FLYWHEEL, [
            "--model-repository", self.repo, "--model-control-mode", "poll",
            "--repository-poll-secs", "1", "--prediction-log-dir", os.path.join(self.tmp, "log"),
            "--data-dir", os.path.join(self.tmp, "data"), "--loops", loops], timeout=90)
        self.server.start()
        self.url = self.server.http_url
        self.rng = np.random.default_rng(5)
        self.sent = 0

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def send_labelled(self, concept, n, shifted):
        """n one-row requests with ids, then their labels. `shifted` moves feature 15 by +3: the
        traffic of concept B drifts, so that a model can tell the two regimes apart."""
        labels = []
        for _ in range(n):
            self.sent += 1
            rid = f"lab-{self.sent}"
            x = self.rng.normal(size=(1, 16)).astype(np.float32)
            if shifted:
                x[:, 15] += 3
            status, reply = call("POST", f"{self.url}/v2/models/{MODEL}/infer", infer_body(x, rid))
            self.assertEqual(status, 200, reply)
            labels.append({"id": rid, "label": float(concept(x)[0])})
        for i in range(0, len(labels), 200):
            status, reply = call("POST", f"{self.url}/v1/monitor/labels",
                                 {"labels": labels[i:i + 200]})
            self.assertEqual(status, 200, reply)

    def loop_state(self):
        status, reply = call("GET", f"{self.url}/v1/loops/{LOOP}")
        self.assertEqual(status, 200, reply)
        return reply

    def wait_for_run(self, run, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.loop_state()["loop"]
            if state["run"] >= run and not state["running"]:
                return state
            time.sleep(0.2)
        self.fail(f"run {run} did not finish in {timeout}s: {self.loop_state()}\n"
                  f"{self.server.output()[-4000:]}")

    def steps(self, run):
        return [(e["step"], e["status"]) for e in self.loop_state()["history"] if e["run"] == run]

    def production(self):
        status, reply = call("GET", f"{self.url}/v1/registry/models/{MODEL}")
        self.assertEqual(status, 200, reply)
        alias = reply.get("aliases", {}).get("production")
        return alias["version"] if alias else None

    def test_a_model_serving_one_version_is_refused(self):
        # The loop's model must keep a champion and a candidate loaded at once.
        config = os.path.join(self.model_dir, "config.pbtxt")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("version_policy: { latest: { num_versions: 2 } }", ""))
        server = FlywheelServer(FLYWHEEL, self.server.args, timeout=30)
        with self.assertRaises(RuntimeError) as raised:
            server.start()
        self.assertIn("loads only its latest version", str(raised.exception))
        self.assertIn("num_versions: 2", str(raised.exception))

    def test_a_run_killed_in_its_canary_is_finished_at_restart(self):
        # No unlabelled traffic: the canary cannot turn healthy before the kill.
        self.send_labelled(concept_a, 450, shifted=False)
        deadline = time.time() + 180
        while self.loop_state()["loop"]["step"] != "canary":
            self.assertLess(time.time(), deadline, self.loop_state())
            time.sleep(0.05)
        self.server.stop(signal.SIGKILL)
        self.assertTrue(os.path.isdir(os.path.join(self.model_dir, "2")))
        self.server = FlywheelServer(FLYWHEEL, self.server.args, timeout=90)
        self.server.start()
        self.url = self.server.http_url
        history = self.loop_state()["history"]
        done = [e for e in history if e["run"] == 1 and e["step"] == "done"]
        self.assertEqual(len(done), 1, history)
        self.assertIn("rolled_back: run 1 was interrupted at canary", done[0]["detail"])
        self.assertIn(("rollback", "ok"), self.steps(1))
        self.assertIn(("retire", "ok"), self.steps(1))
        self.assertFalse(os.path.exists(os.path.join(self.model_dir, "2")))
        status, rollout = call("GET", f"{self.url}/v1/rollouts/{MODEL}")
        self.assertEqual(rollout["state"], "rolled_back", rollout)
        status, reply = call("POST", f"{self.url}/v2/models/{MODEL}/infer",
                             infer_body(np.zeros((1, 16), np.float32)))
        self.assertEqual((status, reply.get("model_version")), (200, "1"), reply)

    def test_retrain_gate_and_rollback(self):
        traffic = Traffic(self.url)
        traffic.start()
        try:
            self.run_scenarios(traffic)
        finally:
            traffic.stopped.set()
            traffic.join(timeout=30)

    def run_scenarios(self, traffic):
        # 0. An Alertmanager notification (a drift alert routed to this loop) starts a run before
        #    any label arrived: too little data, nothing changes. A resolved one starts nothing.
        alert = {"version": "4", "status": "resolved", "receiver": "retrain",
                 "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                 "externalURL": "http://alertmanager", "truncatedAlerts": 0,
                 "alerts": [{"status": "resolved",
                             "labels": {"alertname": "FlywheelFeatureDrift", "model": MODEL}}]}
        status, reply = call("POST", f"{self.url}/v1/loops/{LOOP}/run", alert)
        self.assertEqual((status, reply["started"]), (200, False), reply)
        alert["status"] = alert["alerts"][0]["status"] = "firing"
        status, reply = call("POST", f"{self.url}/v1/loops/{LOOP}/run", alert)
        self.assertEqual((status, reply["started"]), (202, True), reply)
        state = self.wait_for_run(1)
        self.assertEqual(state["last_outcome"], "not_enough_data", self.loop_state())
        trigger = [e for e in self.loop_state()["history"] if e["run"] == 1][0]
        self.assertIn("alert FlywheelFeatureDrift firing", trigger["detail"])
        self.assertIn(("export", "skipped"), self.steps(1))
        self.assertNotIn(("train", "started"), self.steps(1))

        # 1. Drift to concept A; 450 labels pass the trigger (400) and the loop runs by itself.
        self.send_labelled(concept_a, 450, shifted=False)
        state = self.wait_for_run(2)
        self.assertEqual(state["last_outcome"], "promoted", self.loop_state())
        steps = self.steps(2)
        for step in ("trigger", "export", "train", "register", "evaluate", "gate", "canary",
                     "promote"):
            self.assertIn((step, "ok"), steps, steps)
        evaluate = [e for e in self.loop_state()["history"]
                    if e["run"] == 2 and e["step"] == "evaluate"][0]
        self.assertGreater(evaluate["figures"]["candidate_auc"],
                           evaluate["figures"]["champion_auc"] + 0.02)
        self.assertEqual(self.production(), 2)
        status, reply = call("POST", f"{self.url}/v2/models/{MODEL}/infer",
                             infer_body(np.zeros((1, 16), np.float32)))
        self.assertEqual((status, reply.get("model_version")), (200, "2"), reply)
        ok, failures, versions = traffic.snapshot()
        self.assertEqual(failures, [], "requests failed during run 1")
        self.assertGreater(versions.get("2", 0), 40, versions)  # the canary's and then everyone's

        # 2. A weak candidate (one stump) is stopped at the gate; its version leaves the repository.
        with open(self.mode_file, "w") as f:
            f.write("weak")
        status, reply = call("POST", f"{self.url}/v1/loops/{LOOP}/run", {"reason": "test run 2"})
        self.assertEqual(status, 202, reply)
        state = self.wait_for_run(3)
        self.assertEqual(state["last_outcome"], "stopped_at_gate", self.loop_state())
        self.assertIn(("gate", "failed"), self.steps(3))
        self.assertNotIn(("canary", "started"), self.steps(3))
        self.assertFalse(os.path.exists(os.path.join(self.model_dir, "3")))
        self.assertEqual(self.production(), 2)
        ok, failures, _ = traffic.snapshot()
        self.assertEqual(failures, [], "requests failed during run 2")

        # 3. Concept B arrives; the candidate passes the gate, and its model disappears during the
        #    canary. Unlabelled traffic pauses until the candidate is gone, so that the canary
        #    cannot turn healthy first.
        with open(self.mode_file, "w") as f:
            f.write("good")
        traffic.paused.set()
        self.send_labelled(concept_b, 450, shifted=True)
        deadline = time.time() + 180
        while True:
            self.assertLess(time.time(), deadline, self.loop_state())
            state = self.loop_state()["loop"]
            if state["run"] == 4 and state["step"] == "canary":
                break
            self.assertFalse(state["run"] == 4 and not state["running"], self.loop_state())
            time.sleep(0.05)
        shutil.rmtree(os.path.join(self.model_dir, "4"))
        deadline = time.time() + 30
        while call("GET", f"{self.url}/v2/models/{MODEL}/versions/4/ready")[0] == 200:
            self.assertLess(time.time(), deadline, "version 4 was not unloaded")
            time.sleep(0.1)
        failed_before = len(traffic.snapshot()[1])
        traffic.paused.clear()
        state = self.wait_for_run(4)
        self.assertEqual(state["last_outcome"], "rolled_back", self.loop_state())
        self.assertIn(("rollback", "ok"), self.steps(4))
        self.assertNotIn(("promote", "ok"), self.steps(4))
        self.assertEqual(self.production(), 2)
        status, rollout = call("GET", f"{self.url}/v1/rollouts/{MODEL}")
        self.assertEqual(status, 200, rollout)
        self.assertEqual(rollout["state"], "rolled_back", rollout)
        # The failures were the candidate's; after the rollback every request succeeds on v2.
        _, failures, _ = traffic.snapshot()
        self.assertGreater(len(failures), failed_before)
        for _, code, error in failures:
            self.assertIn("4", error)
        after = len(failures)
        ok_before = traffic.snapshot()[0]
        while traffic.snapshot()[0] < ok_before + 100:
            time.sleep(0.05)
        self.assertEqual(len(traffic.snapshot()[1]), after, traffic.snapshot()[1][after:])
        with urllib.request.urlopen(self.server.metrics_url, timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn("flywheel_rollout_rollbacks_total", metrics)
        self.assertIn('flywheel_loop_runs_total{loop="fraud-retrain",outcome="rolled_back"} 1',
                      metrics)

        # 4. A training command that fails ends the run at `train`; nothing else changes.
        with open(self.mode_file, "w") as f:
            f.write("fail")
        status, reply = call("POST", f"{self.url}/v1/loops/{LOOP}/run", {})
        self.assertEqual(status, 202, reply)
        state = self.wait_for_run(5)
        self.assertEqual(state["last_outcome"], "failed", self.loop_state())
        failed = [e for e in self.loop_state()["history"]
                  if e["run"] == 5 and e["step"] == "train" and e["status"] == "failed"]
        self.assertEqual(len(failed), 1, self.steps(5))
        self.assertIn("exited with status 3", failed[0]["detail"])
        self.assertIn("no GPU found", failed[0]["detail"])
        self.assertEqual(sorted(e for e in os.listdir(self.model_dir) if e.isdigit()), ["1", "2"])
        self.assertEqual(self.production(), 2)
        # `flywheel loop status` reads the same history from the repository.
        out = subprocess.run([FLYWHEEL, "loop", "status", "--model-repository", self.repo],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        for text in ("promoted", "stopped at gate", "rolled back", "failed at train"):
            self.assertIn(text, out.stdout)


if __name__ == "__main__":
    FLYWHEEL = os.path.abspath(sys.argv.pop(1))
    unittest.main()
