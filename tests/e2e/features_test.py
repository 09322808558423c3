#!/usr/bin/python3
"""End-to-end test of the feature store inside the real `flywheel serve --features DIR`:

- pushes and online lookups on the embedded store: values against a brute-force reference,
  NOT_FOUND, OUTSIDE_TTL, unknown features; a malformed batch is refused whole with each bad
  event's position; GET /v1/features/views; the Prometheus counters; state kept across SIGTERM
  and kill -9 restarts, acknowledged pushes not yet flushed included (replayed from the event
  log exactly once);
- the same on a Redis online store (`--online-store redis://...`, a redis-server started here),
  shared by a second server;
- a Redis Stream source: XADDed entries show in lookups; then entries keep coming while the
  server is killed with SIGKILL and restarted, and the final counts equal the entries exactly;
- `flywheel features export` on the event log the server wrote, against a brute-force
  point-in-time reference on a random spine (pushes), and per-user counts (stream, with entries
  logged twice around the kills).

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/features_test.py PATH/TO/flywheel [unittest args]
"""
import csv
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from server_util import FlywheelServer, free_port  # noqa: E402

FLYWHEEL = None
REDIS_SERVER = "/usr/bin/redis-server"
T0 = 1700000000  # 2023-11-14T22:13:20Z
DEADLINE_S = 60

VIEW_CLICKS = """
  user_clicks:
    entity: user
    source: clicks
    ttl: 2h
    schema: {dwell: float64, page: string}
    fields: {country: string}
    aggregations:
      clicks_1h: count over 1h, every 10m
      dwell_1h: sum(dwell) over 1h, every 10m
      last_page: last(page) over 1h, every 10m
"""
PUSH_DEFINITIONS = """
entities:
  user: {keys: [user_id]}
sources:
  clicks: {kind: push, timestamp: ts, lateness: 1d}
views:
""" + VIEW_CLICKS
STREAM_DEFINITIONS = """
entities:
  user: {keys: [user_id]}
sources:
  clicks: {kind: push, timestamp: ts, lateness: 1d}
  orders: {kind: redis_stream, stream: orders-stream, timestamp: ts, timestamp_unit: ms}
views:
""" + VIEW_CLICKS + """
  user_orders:
    entity: user
    source: orders
    schema: {amount: int64}
    aggregations:
      orders_1d: count over 1d, every 1h
      spend_1d: sum(amount) over 1d, every 1h
"""
CLICK_FEATURES = ["user_clicks:clicks_1h", "user_clicks:dwell_1h", "user_clicks:last_page",
                  "user_clicks:country"]
# name -> (kind, field, window s, every s); ttl 2h for the whole view.
CLICK_SPECS = {
    "user_clicks:clicks_1h": ("count", None, 3600, 600),
    "user_clicks:dwell_1h": ("sum", "dwell", 3600, 600),
    "user_clicks:last_page": ("last", "page", 3600, 600),
    "user_clicks:country": ("field", "country", None, None),
}
CLICK_TTL = 7200


def reference(feature, events, t, see_future):
    """(status, value) of a click feature at time t over one user's events, the slow way:
    the rules of features/export.h (see_future=False) and of online lookups (True)."""
    kind, field, window, every = CLICK_SPECS[feature]
    visible = [e for e in events if see_future or e["ts"] <= t]
    if not visible:
        return "NOT_FOUND", None
    if kind == "field":
        having = [e for e in visible if field in e]
        if not having:
            return "NOT_FOUND", None
        newest = max(having, key=lambda e: e["ts"])
        if t - newest["ts"] > CLICK_TTL:
            return "OUTSIDE_TTL", None
        return "PRESENT", newest[field]
    if t - max(e["ts"] for e in visible) > CLICK_TTL:
        return "OUTSIDE_TTL", None
    end = (t // every) * every
    inside = [e for e in visible if end - window <= e["ts"] < end and (field is None or field in e)]
    if kind == "count":
        return "PRESENT", len(inside)
    if kind == "sum":
        return "PRESENT", sum((e[field] for e in inside), 0.0)
    if not inside:
        return "NOT_FOUND", None
    return "PRESENT", max(inside, key=lambda e: e["ts"])[field]


def same_value(a, b):
    if isinstance(b, float) or isinstance(a, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def request(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def push(srv, source, events):
    return request("POST", srv.http_url + "/v1/features/push", {"source": source, "events": events})


def online(srv, features, entities, now=None):
    body = {"features": features, "entities": entities}
    if now is not None:
        body["now"] = now
    status, result = request("POST", srv.http_url + "/v1/features/online", body)
    assert status == 200, result
    return result


def metrics(srv):
    with urllib.request.urlopen(srv.metrics_url, timeout=10) as r:
        return r.read().decode()


def random_clicks(rng, users, n, start, span):
    """n clicks with distinct times in [start, start + span), some without a country."""
    times = rng.sample(range(start, start + span), n)
    clicks = []
    for t in times:
        click = {"user_id": rng.choice(users), "ts": t, "dwell": round(rng.uniform(0, 30), 3),
                 "page": rng.choice(["home", "cart", "search", "item"])}
        if rng.random() < 0.7:
            click["country"] = rng.choice(["fr", "de", "us"])
        clicks.append(click)
    return clicks


class RedisServer:
    """A private redis-server on a free loopback port, nothing saved to disk."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="flywheel-e2e-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")])
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                client = RedisClient(self.port)
                pong = client.command("PING")
                client.close()
                if pong == "PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisClient:
    """Just enough RESP2 for XADD and PING."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def close(self):
        self.reader.close()
        self.sock.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            return data[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def command(self, *args):
        self.sock.sendall(self.encode(args))
        return self.read()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self.read() for _ in commands]


class FeatureStoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="flywheel-e2e-features-")
        self.repo = os.path.join(self.tmp, "models")
        os.makedirs(self.repo)
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
            os.unlink(srv.log.name)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def definitions(self, name, yaml):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "features.yaml"), "w") as f:
            f.write(yaml)
        return path

    def serve(self, defs, data, *extra):
        srv = FlywheelServer(FLYWHEEL, ["--model-repository", self.repo, "--features", defs,
                                        "--data-dir", data] + list(extra))
        self.servers.append(srv)
        return srv.start()

    def kill9(self, srv):
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()

    def check_clicks(self, srv, clicks, users, now):
        """Every click feature of every user at `now` against the reference."""
        result = online(srv, CLICK_FEATURES, [{"user_id": u} for u in users], now)
        for row, user in zip(result["results"], users):
            mine = [c for c in clicks if c["user_id"] == user]
            for feature, value, status in zip(CLICK_FEATURES, row["values"], row["statuses"]):
                want_status, want = reference(feature, mine, now, see_future=True)
                self.assertEqual(status, want_status, f"{feature} of {user} at {now}")
                self.assertTrue(same_value(value, want),
                                f"{feature} of {user} at {now}: got {value}, want {want}")

    def export(self, defs, data, features, rows, name):
        spine = os.path.join(self.tmp, name + "-spine.csv")
        out = os.path.join(self.tmp, name + "-train.csv")
        with open(spine, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["user_id", "timestamp"])
            w.writerows(rows)
        run = subprocess.run(
            [FLYWHEEL, "features", "export", "--definitions", defs, "--events",
             os.path.join(data, "events"), "--spine", spine, "--features", ",".join(features),
             "--out", out], capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(out, newline="") as f:
            table = list(csv.reader(f))
        self.assertEqual(table[0], ["user_id", "timestamp"] + features)
        return table[1:], run.stderr

    def test_push_lookup_export_and_restarts(self):
        rng = random.Random(5)
        defs = self.definitions("defs", PUSH_DEFINITIONS)
        data = os.path.join(self.tmp, "data")
        srv = self.serve(defs, data)
        users = ["u0", "u1", "u2", "u3", "u4"]
        clicks = random_clicks(rng, users, 60, T0, 3 * 3600)
        shuffled = clicks[:]
        rng.shuffle(shuffled)
        for i in range(0, len(shuffled), 20):
            status, body = push(srv, "clicks", shuffled[i:i + 20])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["accepted"], len(shuffled[i:i + 20]))
            self.assertEqual(body["late"], 0)
        end = T0 + 3 * 3600
        self.check_clicks(srv, clicks, users, end + 601)

        # An unknown user is NOT_FOUND, an unknown feature reported per item.
        result = online(srv, ["user_clicks:clicks_1h", "user_clicks:nope"], ["ghost", "u0"],
                        end + 601)
        self.assertEqual(result["results"][0]["statuses"], ["NOT_FOUND", "UNKNOWN_FEATURE"])
        self.assertEqual(result["results"][1]["statuses"], ["PRESENT", "UNKNOWN_FEATURE"])
        self.assertIn("user_clicks:nope", result["errors"])
        # Two hours after a user's last click, everything reads OUTSIDE_TTL.
        result = online(srv, CLICK_FEATURES, users, end + CLICK_TTL + 10)
        for row in result["results"]:
            self.assertEqual(row["statuses"], ["OUTSIDE_TTL"] * len(CLICK_FEATURES))

        # A malformed batch: refused whole, each bad event named by position.
        bad = [{"user_id": "u0", "ts": end - 10, "dwell": 1.0},
               {"ts": end - 9},
               {"user_id": "u0", "ts": "yesterday"},
               {"user_id": "u0", "ts": end - 8, "dwell": "long"}]
        status, body = push(srv, "clicks", bad)
        self.assertEqual(status, 400, body)
        self.assertIn("event 1: field 'user_id' missing", body["error"])
        self.assertEqual([e["event"] for e in body["errors"]], [1, 2, 3])
        self.assertIn("dwell", body["errors"][2]["message"])
        self.check_clicks(srv, clicks, users, end + 601)
        status, body = push(srv, "nope", [])
        self.assertEqual(status, 404, body)

        status, views = request("GET", srv.http_url + "/v1/features/views")
        self.assertEqual(status, 200)
        self.assertEqual([v["name"] for v in views["views"]], ["user_clicks"])
        self.assertEqual([f["name"] for f in views["views"][0]["features"]],
                         ["country", "clicks_1h", "dwell_1h", "last_page"])
        text = metrics(srv)
        self.assertIn('flywheel_feature_events_total{outcome="accepted",source="clicks"} 60', text)
        self.assertIn('flywheel_feature_events_total{outcome="rejected",source="clicks"} 4', text)
        self.assertIn('flywheel_feature_lookup_latency_us_count{path="http"}', text)

        # SIGTERM flushes; the state comes back.
        self.assertEqual(srv.stop(), 0)
        srv = self.serve(defs, data)
        self.check_clicks(srv, clicks, users, end + 601)
        # kill -9 after the background flush (every 100 ms) keeps an acknowledged push too.
        more = random_clicks(rng, users, 10, end, 600)
        status, body = push(srv, "clicks", more)
        self.assertEqual(status, 200, body)
        clicks += more
        time.sleep(1.0)
        self.kill9(srv)
        srv = self.serve(defs, data)
        self.check_clicks(srv, clicks, users, end + 1200)
        # kill -9 right after acknowledged pushes, before a flush could commit them: the restart
        # replays them from the event log, and a restart killed again at once (its replay maybe
        # not committed yet) replays them again, so every count is exact: none lost, none doubled.
        burst = random_clicks(rng, users, 40, end + 600, 600)
        for i in range(0, len(burst), 4):
            status, body = push(srv, "clicks", burst[i:i + 4])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["accepted"], 4)
        clicks += burst
        self.kill9(srv)
        srv = self.serve(defs, data)
        self.check_clicks(srv, clicks, users, end + 1801)
        self.kill9(srv)
        srv = self.serve(defs, data)
        self.check_clicks(srv, clicks, users, end + 1801)
        # Once committed, one more restart applies nothing twice.
        self.assertEqual(srv.stop(), 0)
        srv = self.serve(defs, data)
        self.check_clicks(srv, clicks, users, end + 1801)
        self.assertEqual(srv.stop(), 0)

        # The training export from the event log, against the point-in-time reference.
        rows = [(rng.choice(users + ["ghost"]), rng.randrange(T0 - 600, end + 3 * 3600))
                for _ in range(60)]
        first = clicks[0]
        rows += [(first["user_id"], first["ts"]), (first["user_id"], first["ts"] - 1),
                 ("u2", end + CLICK_TTL + 5)]
        table, _ = self.export(defs, data, CLICK_FEATURES, rows, "push")
        self.assertEqual(len(table), len(rows))
        for (user, t), line in zip(rows, table):
            self.assertEqual(line[:2], [user, str(t)])
            mine = [c for c in clicks if c["user_id"] == user]
            for feature, cell in zip(CLICK_FEATURES, line[2:]):
                status, want = reference(feature, mine, t, see_future=False)
                if status != "PRESENT":
                    self.assertEqual(cell, "", f"{feature} of {user} at {t}: {status}")
                    continue
                got = float(cell) if isinstance(want, float) else (
                    int(cell) if isinstance(want, int) else cell)
                self.assertTrue(same_value(got, want),
                                f"{feature} of {user} at {t}: got {cell!r}, want {want!r}")

    def test_redis_online_store(self):
        redis = RedisServer()
        self.addCleanup(redis.stop)
        rng = random.Random(7)
        defs = self.definitions("defs", PUSH_DEFINITIONS)
        users = ["a", "b", "c"]
        clicks = random_clicks(rng, users, 30, T0, 3600)
        srv = self.serve(defs, os.path.join(self.tmp, "data1"), "--online-store", redis.url)
        status, body = push(srv, "clicks", clicks)
        self.assertEqual(status, 200, body)
        self.check_clicks(srv, clicks, users, T0 + 3600 + 601)
        self.assertEqual(online(srv, ["user_clicks:clicks_1h"], ["zz"])["results"][0]["statuses"],
                         ["NOT_FOUND"])
        self.assertEqual(srv.stop(), 0)
        # Another server (its own data folder) on the same Redis serves the same values.
        srv = self.serve(defs, os.path.join(self.tmp, "data2"), "--online-store", redis.url)
        self.check_clicks(srv, clicks, users, T0 + 3600 + 601)
        self.assertEqual(srv.stop(), 0)

    def test_stream_source_exactly_once_across_kill_9(self):
        redis = RedisServer()
        self.addCleanup(redis.stop)
        defs = self.definitions("defs", STREAM_DEFINITIONS)
        data = os.path.join(self.tmp, "data")
        users = [f"s{i}" for i in range(7)]
        produced = {u: 0 for u in users}
        spent = {u: 0 for u in users}
        base_ms = T0 * 1000
        seq = [0]
        producer = RedisClient(redis.port)
        self.addCleanup(producer.close)

        def add(n):
            commands = []
            for _ in range(n):
                i = seq[0]
                seq[0] += 1
                user = users[i % len(users)]
                produced[user] += 1
                spent[user] += i
                commands.append(["XADD", "orders-stream", "*", "user_id", user, "ts", base_ms + i,
                                 "amount", i])
            for reply in producer.pipeline(commands):
                self.assertIsInstance(reply, str)

        now = T0 + 3 * 3600

        def totals(srv):
            result = online(srv, ["user_orders:orders_1d", "user_orders:spend_1d"], users, now)
            counts = {u: r["values"][0] or 0 for u, r in zip(users, result["results"])}
            sums = {u: r["values"][1] or 0 for u, r in zip(users, result["results"])}
            return counts, sums

        def wait_caught_up(srv):
            deadline = time.time() + DEADLINE_S
            while time.time() < deadline:
                counts, _ = totals(srv)
                if sum(counts.values()) >= seq[0]:
                    return
                time.sleep(0.05)
            self.fail(f"saw {sum(totals(srv)[0].values())} of {seq[0]} entries")

        srv = self.serve(defs, data, "--stream-redis", redis.url)
        add(100)
        wait_caught_up(srv)
        self.assertEqual(totals(srv), (produced, spent))

        # Entries keep coming while the server is killed twice at arbitrary points.
        stop = threading.Event()

        def produce():
            while not stop.is_set() and seq[0] < 100 + 4000:
                add(25)
                time.sleep(0.01)

        killed_at = []
        thread = threading.Thread(target=produce)
        thread.start()
        try:
            for pause in (0.6, 0.9):
                time.sleep(pause)
                self.kill9(srv)
                killed_at.append(seq[0])
                srv = self.serve(defs, data, "--stream-redis", redis.url)
        finally:
            stop.set()
            thread.join()
        wait_caught_up(srv)
        time.sleep(0.5)  # a batch applied twice would show now
        counts, sums = totals(srv)
        # Both kills came while entries were still being added.
        self.assertTrue(all(n < seq[0] for n in killed_at), (killed_at, seq[0]))
        self.assertEqual(counts, produced)
        self.assertEqual(sums, spent)
        text = metrics(srv)
        self.assertIn('flywheel_feature_stream_up{source="orders",stream="orders-stream"} 1', text)
        self.assertEqual(srv.stop(), 0)

        # The event log holds entries logged twice around the kills; the export counts each once.
        rows = [(u, now) for u in users]
        table, stderr = self.export(defs, data, ["user_orders:orders_1d", "user_orders:spend_1d"],
                                    rows, "stream")
        for (user, _), line in zip(rows, table):
            self.assertEqual(int(line[2]), produced[user], f"orders of {user}; {stderr}")
            self.assertEqual(int(line[3]), spent[user], f"spend of {user}; {stderr}")
        print(stderr.strip(), file=sys.stderr)

    def test_bad_definitions_refuse_to_start(self):
        defs = self.definitions("bad", "views:\n  v: {entity: nobody, source: none}\n")
        run = subprocess.run(
            [FLYWHEEL, "serve", "--model-repository", self.repo, "--features", defs, "--data-dir",
             os.path.join(self.tmp, "data"), "--http-port", "0", "--grpc-port", "0",
             "--metrics-port", "0"], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 1)
        self.assertIn("features.yaml:2", run.stderr)
        # A stream source needs a Redis to read.
        defs = self.definitions("streams", STREAM_DEFINITIONS)
        run = subprocess.run(
            [FLYWHEEL, "serve", "--model-repository", self.repo, "--features", defs, "--data-dir",
             os.path.join(self.tmp, "data"), "--http-port", "0", "--grpc-port", "0",
             "--metrics-port", "0"], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 1)
        self.assertIn("--stream-redis", run.stderr)
        run = subprocess.run([FLYWHEEL, "features", "views", "--definitions", defs],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([v["name"] for v in json.loads(run.stdout)["views"]],
                         ["user_clicks", "user_orders"])


def main():
    global FLYWHEEL
    if len(sys.argv) < 2:
        sys.exit("usage: features_test.py PATH/TO/flywheel [unittest args]")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
