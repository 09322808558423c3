#!/usr/bin/python3
"""Inference server benchmarks (`make bench` runs them after the engine comparison):

(a) wrk against POST /v2/models/simple/infer of `flywheel serve` versus wrk against nginx
    returning a static body of the same size: same connections, threads and duration, same run.
    Goal: flywheel's requests/s >= 0.7 x nginx's.
(b) a concurrency sweep (`flywheel bench --url`) on mlp_ranker with dynamic batching off and on
    (two private repositories whose config.pbtxt differ only in dynamic_batching), against the
    engine's own best batched throughput (`flywheel bench MODEL.onnx`). Goal at concurrency 64:
    throughput >= 0.8 x the engine's best, p99 < 5 ms. Also, at concurrency 64, requests of
    1 to 64 rows: how much of the gap is the cost per request.
(c) HTTP versus gRPC per-request overhead on `simple` at concurrency 1.

Each measurement runs --reps times and the report shows medians. Server CPU time (utime + stime
from /proc, all threads or worker processes) is read around each measurement, so that the cost
per request can be compared even though client and server share the machine. The section
"Inference server" of docs/benchmarks.md is replaced (or appended); nothing else there changes.

Usage: /usr/bin/python3 bench/serving_bench.py BUILD_DIR [--reps 3] [--duration 5]
       [--max-load 1.5] [--parts a,b,c] [--out FILE] [--command TEXT]
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)

from server_util import FlywheelServer, free_port  # noqa: E402
import serving_report  # noqa: E402

NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
INSTALL_HINT = "run scripts/install-deps.sh (Debian packages wrk and nginx-light)"
SWEEP = [1, 2, 4, 8, 16, 32, 64]
ROWS_PER_REQUEST = [1, 4, 8, 16, 64]
WARMUP_PER_CONNECTION = 10  # flywheel bench --url's default --warmup
CLK_TCK = os.sysconf("SC_CLK_TCK")

SIMPLE_REQUEST = json.dumps({"inputs": [
    {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))},
    {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [1] * 16},
]}, separators=(",", ":"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run(cmd, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(shlex.quote, cmd))} exited with {p.returncode}:\n"
                           f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p.stdout


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


# --- peers -----------------------------------------------------------------------------------
class Nginx:
    """nginx (Debian's nginx-light) as an unprivileged foreground process on a free loopback port,
    answering every request, POST included, with `body`."""

    def __init__(self, body, workers):
        self.dir = tempfile.mkdtemp(prefix="flywheel-nginx-")
        self.port = free_port()
        literal = body.replace("\\", "\\\\").replace("'", "\\'")
        d = self.dir
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""daemon off;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      default_type application/json;
      return 200 '{literal}';
    }}
  }}
}}
""")
        self.proc = None
        self.body_bytes = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def __enter__(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf,
                                      "-e", os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.errors()}")
            try:
                req = urllib.request.Request(self.url + "/", data=b"{}", method="POST")
                with urllib.request.urlopen(req, timeout=1) as r:
                    self.body_bytes = len(r.read())
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"nginx did not answer on port {self.port}: {self.errors()}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # nginx's fast shutdown, workers included
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def errors(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""


class Server:
    """`flywheel serve` on free ports, stopped on exit."""

    def __init__(self, flywheel, repo, extra=()):
        self.srv = FlywheelServer(flywheel, ["--model-repository", repo] + list(extra))

    def __enter__(self):
        self.srv.start()
        return self.srv

    def __exit__(self, *exc):
        try:
            self.srv.stop()
        finally:
            os.unlink(self.srv.log.name)


# --- measurements ----------------------------------------------------------------------------
def wrk(url, lua, threads, connections, duration, server_pids):
    before = cpu_seconds(server_pids)
    out = run([WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
               "-s", lua, url], timeout=duration + 120)
    cpu = cpu_seconds(server_pids) - before
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n:
        raise RuntimeError(f"wrk printed no request count:\n{out}")
    res = {"rps": float(m.group(1)), "requests": int(n.group(1)), "non2xx": 0,
           "socket_errors": "", "server_cpu_s": cpu,
           "cpu_us_per_request": cpu * 1e6 / int(n.group(1)) if int(n.group(1)) else None}
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors:(.*)", out)
    if m:
        res["socket_errors"] = m.group(1).strip()
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            res[f"p{pct}_us"] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    return res


def flywheel_load(flywheel, srv, model, protocol, concurrency, duration, json_path, batch=1):
    """One `flywheel bench --url` level; adds the server's CPU time per request (warm-up
    requests included, so slightly overstated)."""
    url = srv.http_url if protocol == "http" else "grpc://" + srv.grpc_target
    before = cpu_seconds([srv.proc.pid])
    run([flywheel, "bench", "--url", url, "--model", model, "--protocol", protocol,
         "--concurrency", str(concurrency), "--batch", str(batch),
         "--duration-secs", str(duration), "--warmup", str(WARMUP_PER_CONNECTION),
         "--json", json_path], timeout=duration + 120)
    cpu = cpu_seconds([srv.proc.pid]) - before
    with open(json_path) as f:
        res = json.load(f)["results"][0]
    requests = res["requests"] + WARMUP_PER_CONNECTION * concurrency
    res["server_cpu_s"] = cpu
    res["cpu_us_per_request"] = cpu * 1e6 / requests if requests else None
    inf, ex = res.get("server_inferences"), res.get("server_executions")
    res["avg_batch"] = inf / ex if inf and ex else None
    return res


def engine_best(flywheel, model_path, json_path):
    run([flywheel, "bench", model_path, "--batch", "1,8,64", "--threads", "1", "--json",
         json_path])
    with open(json_path) as f:
        cells = json.load(f)["results"]
    best = max(cells, key=lambda c: c["throughput_per_s"])
    return {"throughput": best["throughput_per_s"], "batch": best["batch"],
            "cells": {c["batch"]: c["throughput_per_s"] for c in cells}}


def block_span(text, field):
    """[start, end) of the top-level `field { ... }` block of a protobuf text file, through the
    end of its line; (None, None) when there is none."""
    m = re.search(rf"^{field}\s*\{{", text, re.M)
    if not m:
        return None, None
    depth, i = 0, m.end() - 1
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                break
        elif text[i] == '"':
            i = text.index('"', i + 1)
        i += 1
    end = text.find("\n", i)
    return m.start(), len(text) if end < 0 else end + 1


def mlp_repositories(parent):
    """Two copies of examples/models/mlp_ranker: 'on' as committed, 'off' without its
    dynamic_batching block (nothing else differs)."""
    src = os.path.join(ROOT, "examples", "models", "mlp_ranker")
    with open(os.path.join(src, "config.pbtxt")) as f:
        config = f.read()
    start, end = block_span(config, "dynamic_batching")
    if start is None:
        raise RuntimeError(f"{src}/config.pbtxt has no dynamic_batching block to switch off")
    repos = {}
    for mode, text in (("on", config), ("off", config[:start] + config[end:])):
        repo = os.path.join(parent, f"mlp-batching-{mode}")
        shutil.copytree(src, os.path.join(repo, "mlp_ranker"))
        with open(os.path.join(repo, "mlp_ranker", "config.pbtxt"), "w") as f:
            f.write(text)
        repos[mode] = repo
    return repos, " ".join(config[start:end].split())


def medians(rows, keys):
    return {k: median(r.get(k) for r in rows) for k in keys}


LOAD_KEYS = ("throughput_infer_per_s", "throughput_req_per_s", "p50_us", "p99_us", "mean_us",
             "server_queue_us", "server_compute_us", "avg_batch", "cpu_us_per_request")


class Bench:
    def __init__(self, a):
        self.a = a
        self.flywheel = os.path.abspath(os.path.join(a.build, "flywheel"))
        self.work = os.path.abspath(a.work or os.path.join(a.build, "bench-work", "serving"))
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.problems = []
        self.loads = []

    def note_load(self):
        self.loads.append(os.getloadavg()[0])

    def json_path(self, name):
        return os.path.join(self.work, name + ".json")

    def simple_repository(self):
        repo = os.path.join(self.work, "simple-repo")
        if not os.path.isdir(repo):
            shutil.copytree(os.path.join(ROOT, "examples", "models", "simple"),
                            os.path.join(repo, "simple"))
        return repo

    def wrk_vs_nginx(self):
        a = self.a
        lua = os.path.join(self.work, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = '{SIMPLE_REQUEST}'\n")
        runs = []
        with Server(self.flywheel, self.simple_repository(),
                    ["--http-threads", str(a.http_threads)]) as srv:
            url = srv.http_url + "/v2/models/simple/infer"
            req = urllib.request.Request(url, data=SIMPLE_REQUEST.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                body = r.read().decode()
            with Nginx(body, a.http_threads) as ngx:
                targets = {"flywheel": (url, [srv.proc.pid]),
                           "nginx": (ngx.url + "/v2/models/simple/infer", ngx.pids())}
                for rep in range(a.reps):
                    res = {}
                    for who in (["flywheel", "nginx"] if rep % 2 == 0 else ["nginx", "flywheel"]):
                        log(f"   (a) rep {rep + 1}/{a.reps}: wrk -> {who}")
                        target, pids = targets[who]
                        res[who] = wrk(target, lua, a.wrk_threads, a.wrk_connections, a.duration,
                                       pids)
                        if res[who]["non2xx"] or res[who]["socket_errors"]:
                            self.problems.append(
                                f"(a) {who}: {res[who]['non2xx']} non-2xx responses, socket "
                                f"errors: {res[who]['socket_errors'] or 'none'}")
                    res["ratio"] = res["flywheel"]["rps"] / res["nginx"]["rps"]
                    runs.append(res)
                nginx_body = ngx.body_bytes
        keys = ("rps", "p50_us", "p99_us", "cpu_us_per_request")
        return {"runs": runs, "request_bytes": len(SIMPLE_REQUEST), "body_bytes": len(body),
                "nginx_body_bytes": nginx_body,
                "flywheel": medians([r["flywheel"] for r in runs], keys),
                "nginx": medians([r["nginx"] for r in runs], keys),
                "ratio": median(r["ratio"] for r in runs)}

    def batching_sweep(self):
        a = self.a
        repos, batching_block = mlp_repositories(self.work)
        model = os.path.join(ROOT, "examples", "models", "mlp_ranker", "1", "model.onnx")
        engine_runs = []
        sweeps = {"off": {c: [] for c in SWEEP}, "on": {c: [] for c in SWEEP}}
        rows = {b: [] for b in ROWS_PER_REQUEST}
        for rep in range(a.reps):
            log(f"   (b) rep {rep + 1}/{a.reps}: engine")
            engine_runs.append(engine_best(self.flywheel, model, self.json_path(f"engine-{rep}")))
            for mode in (("off", "on") if rep % 2 == 0 else ("on", "off")):
                log(f"   (b) rep {rep + 1}/{a.reps}: sweep, dynamic batching {mode}")
                with Server(self.flywheel, repos[mode]) as srv:
                    for c in SWEEP:
                        sweeps[mode][c].append(flywheel_load(
                            self.flywheel, srv, "mlp_ranker", "http", c, a.duration,
                            self.json_path(f"sweep-{mode}-{c}-{rep}")))
                    if mode == "on":
                        for b in ROWS_PER_REQUEST:
                            rows[b].append(flywheel_load(
                                self.flywheel, srv, "mlp_ranker", "http", 64, a.duration,
                                self.json_path(f"rows-{b}-{rep}"), batch=b))
        return {"table": {mode: {c: medians(runs, LOAD_KEYS) for c, runs in levels.items()}
                          for mode, levels in sweeps.items()},
                "rows_per_request": {b: medians(runs, LOAD_KEYS) for b, runs in rows.items()},
                "engine_best": median(e["throughput"] for e in engine_runs),
                "engine_best_batch": statistics.mode(e["batch"] for e in engine_runs),
                "engine_cells": {b: median(e["cells"][b] for e in engine_runs)
                                 for b in engine_runs[0]["cells"]},
                "batching_block": batching_block}

    def http_vs_grpc(self):
        a = self.a
        runs = {"http": [], "grpc": []}
        with Server(self.flywheel, self.simple_repository()) as srv:
            for rep in range(a.reps):
                for proto in (("http", "grpc") if rep % 2 == 0 else ("grpc", "http")):
                    log(f"   (c) rep {rep + 1}/{a.reps}: {proto}")
                    runs[proto].append(flywheel_load(self.flywheel, srv, "simple", proto, 1,
                                                     a.duration,
                                                     self.json_path(f"proto-{proto}-{rep}")))
        return {proto: medians(rows, LOAD_KEYS) for proto, rows in runs.items()}


def wait_for_quiet(max_load, max_wait):
    if max_load <= 0:
        return
    deadline = time.time() + max_wait
    while os.getloadavg()[0] >= max_load and time.time() < deadline:
        log(f"   load average {os.getloadavg()[0]:.2f} >= {max_load}: waiting")
        time.sleep(15)


RUN_SETTINGS = ("reps", "duration", "wrk_threads", "wrk_connections", "http_threads")


def int_keys(x):
    """JSON turned the integer keys (concurrency, rows) into strings: back to int."""
    if isinstance(x, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): int_keys(v)
                for k, v in x.items()}
    if isinstance(x, list):
        return [int_keys(v) for v in x]
    return x


def render(a):
    with open(a.render) as f:
        doc = int_keys(json.load(f))
    for k, v in doc["settings"].items():
        setattr(a, k, v)
    started = datetime.datetime.fromisoformat(doc["started"])
    text = serving_report.section(a, doc["command"], started, doc["loads"], doc["problems"],
                                  doc["results"])
    print(text)
    if a.out:
        serving_report.replace_section(a.out, text)
        log(f"wrote the '{serving_report.SECTION[3:]}' section of {a.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build",
                    help="build folder holding the flywheel binary")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--parts", default="a,b,c", help="which benchmarks (a, b, c)")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--wrk-connections", type=int, default=32)
    ap.add_argument("--http-threads", type=int, default=2,
                    help="flywheel --http-threads and nginx worker_processes")
    ap.add_argument("--max-load", type=float, default=0.0,
                    help="first wait (up to --max-wait s) for the 1-min load average to fall "
                    "below this")
    ap.add_argument("--max-wait", type=int, default=900)
    ap.add_argument("--work", default=None, help="scratch folder (default BUILD/bench-work/serving)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                    help="markdown file whose 'Inference server' section is replaced ('' for none)")
    ap.add_argument("--command", default=None, help="command line to record in the report")
    ap.add_argument("--render", metavar="RESULTS_JSON", default=None,
                    help="measure nothing: rewrite the section from a results.json of an "
                    "earlier run")
    a = ap.parse_args()
    if a.render:
        render(a)
        return
    parts = set(a.parts.split(","))

    flywheel = os.path.join(a.build, "flywheel")
    if not os.access(flywheel, os.X_OK):
        sys.exit(f"serving_bench: {flywheel} not found; run 'make build' first")
    if "a" in parts:
        for tool in (WRK, NGINX):
            if not os.access(tool, os.X_OK):
                sys.exit(f"serving_bench: {tool} is missing: {INSTALL_HINT}")

    wait_for_quiet(a.max_load, a.max_wait)
    started = datetime.datetime.now().astimezone()
    bench = Bench(a)
    results = {}
    if "a" in parts:
        log("== (a) wrk: flywheel vs nginx")
        bench.note_load()
        results["a"] = bench.wrk_vs_nginx()
        r = results["a"]
        log(f"   flywheel {r['flywheel']['rps']:.0f} req/s, nginx {r['nginx']['rps']:.0f} req/s, "
            f"ratio {r['ratio']:.2f}")
    if "b" in parts:
        log("== (b) mlp_ranker sweep, dynamic batching off / on, vs the engine")
        bench.note_load()
        results["b"] = bench.batching_sweep()
        on64 = results["b"]["table"]["on"][64]
        log(f"   engine best {results['b']['engine_best']:.0f}/s; at 64: "
            f"{on64['throughput_infer_per_s']:.0f}/s p99 {on64['p99_us']:.0f} us")
    if "c" in parts:
        log("== (c) HTTP vs gRPC at concurrency 1")
        bench.note_load()
        results["c"] = bench.http_vs_grpc()
        r = results["c"]
        log(f"   p50 HTTP {r['http']['p50_us']:.1f} us, gRPC {r['grpc']['p50_us']:.1f} us")
    bench.note_load()

    command = a.command or "/usr/bin/python3 bench/serving_bench.py " + " ".join(
        shlex.quote(x) for x in sys.argv[1:])
    settings = {k: getattr(a, k) for k in RUN_SETTINGS}
    with open(os.path.join(bench.work, "results.json"), "w") as f:
        json.dump({"command": command, "started": started.isoformat(), "settings": settings,
                   "results": results, "loads": bench.loads, "problems": bench.problems}, f,
                  indent=1)
    text = serving_report.section(a, command, started, bench.loads, bench.problems, results)
    print(text)
    if a.out:
        serving_report.replace_section(a.out, text)
        log(f"wrote the '{serving_report.SECTION[3:]}' section of {a.out}")
    if bench.problems:
        log("PROBLEMS:\n" + "\n".join(f"  - {p}" for p in bench.problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
