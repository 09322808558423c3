"""End-to-end test of `flywheel bench --url` against the real `flywheel serve`: HTTP and gRPC
sweeps produce one result per level with server-side figures; a missing model and a server that
is down fail with one clear line.

    /usr/bin/python3 tests/e2e/bench_url_test.py build/flywheel
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_util import FlywheelServer, free_port  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "models")
failures = []


def check(cond, what, detail=""):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)
        if detail:
            print("      " + detail.replace("\n", "\n      ")[:3000])


def bench(binary, *args, timeout=120):
    p = subprocess.run([binary, "bench", *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def check_results(doc, batches, levels, what, stdout):
    results = doc.get("results", [])
    cells = [(r["batch"], r["concurrency"]) for r in results]
    check(cells == [(b, c) for b in batches for c in levels], f"{what}: one result per level", stdout)
    for r in results:
        ok = (r["requests"] > 0 and r["throughput_infer_per_s"] > 0
              and 0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"]
              and r["server_compute_us"] is not None and r["server_compute_us"] > 0
              and r["server_queue_us"] is not None and r["server_queue_us"] >= 0
              and r["server_inferences"] >= r["server_executions"] > 0)
        check(ok, f"{what}: batch {r['batch']} concurrency {r['concurrency']} figures", json.dumps(r))


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp, \
            FlywheelServer(binary, ["--model-repository", REPO]) as srv:
        out = os.path.join(tmp, "http.json")
        rc, so, se = bench(binary, "--url", srv.http_url, "--model", "mlp_ranker",
                           "--concurrency", "1:4", "--batch", "1,8", "--duration-secs", "0.5",
                           "--warmup", "3", "--json", out)
        check(rc == 0, "http sweep succeeds", so + se)
        check("concurrency" in so and "p99_us" in so, "http sweep prints a table", so)
        if rc == 0:
            with open(out) as f:
                doc = json.load(f)
            check(doc["model"] == "mlp_ranker" and doc["inputs"][0]["name"] == "features",
                  "http json names the model and its inputs", json.dumps(doc)[:500])
            check_results(doc, [1, 8], [1, 2, 4], "http", so)

        rc, so, se = bench(binary, "--url", srv.grpc_target, "--protocol", "grpc", "--model",
                           "mlp_ranker", "--concurrency", "2:6:4", "--duration-secs", "0.5",
                           "--input-data", "zero", "--json")
        check(rc == 0, "grpc sweep succeeds", so + se)
        if rc == 0:
            check_results(json.loads(so), [1], [2, 6], "grpc", so)

        rc, so, se = bench(binary, "--url", srv.http_url, "--model", "no_such_model",
                           "--duration-secs", "0.2")
        check(rc == 1 and se.count("\n") == 1 and "no_such_model" in se and "404" in se,
              "http unknown model: one error line with the server's answer", se)
        rc, so, se = bench(binary, "--url", srv.grpc_target, "--protocol", "grpc", "--model",
                           "no_such_model", "--duration-secs", "0.2")
        check(rc == 1 and "no_such_model" in se, "grpc unknown model fails clearly", se)

    port = free_port()
    rc, so, se = bench(binary, "--url", f"http://127.0.0.1:{port}", "--model", "mlp_ranker")
    check(rc == 1 and "cannot connect" in se, "server down: clear error", se)
    rc, so, se = bench(binary, "--url", f"127.0.0.1:{port}", "--protocol", "grpc", "--model",
                       "mlp_ranker")
    check(rc == 1 and "cannot connect" in se, "grpc server down: clear error", se)

    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
