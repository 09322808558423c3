#!/usr/bin/env python3
"""End-to-end test of `flywheel models list|show|register|alias|promote|rollback`.

Usage: /usr/bin/python3 tests/models_cli_test.py PATH/TO/flywheel

Works on a model repository made here (numbered version folders) and checks the printed JSON,
the registry file (<repo>/<model>/.flywheel/registry.json, docs/lifecycle.md), exit codes and error
messages, and that many `flywheel models` processes changing one registry at once lose nothing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

FLYWHEEL = None
REPO = None
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def models(*args, by="tester"):
    cmd = [FLYWHEEL, "models", args[0], "--model-repository", REPO] + list(args[1:])
    if by and args[0] in ("register", "alias", "promote", "rollback"):
        cmd += ["--by", by]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ok_json(*args, **kwargs):
    p = models(*args, "--json", **kwargs)
    check(p.returncode == 0, "%s: exit %d, stderr %s" % (args, p.returncode, p.stderr.strip()))
    try:
        return json.loads(p.stdout)
    except ValueError:
        check(False, "%s: not JSON: %r" % (args, p.stdout))
        return {}


def fails(args, *needles, code=1):
    p = models(*args)
    check(p.returncode == code, "%s: exit %d, expected %d" % (args, p.returncode, code))
    for needle in needles:
        check(needle in p.stderr, "%s: stderr %r lacks %r" % (args, p.stderr.strip(), needle))
    return p


def production(model="rank"):
    return ok_json("show", "-m", model, "-v", "production")["version"]


def test_list_and_register():
    listed = ok_json("list")
    names = [m["model"] for m in listed["models"]]
    check(names == ["ads", "rank"], "list models: %s" % names)
    rank = listed["models"][1]
    check([v["version"] for v in rank["versions"]] == [1, 2, 3], "rank versions on disk")
    check(all(not v["registered"] and v["on_disk"] for v in rank["versions"]), "unregistered")

    meta = ok_json("register", "-m", "rank", "-v", "2", "--training-data", "logs/rank/2024-05",
                   "--code-revision", "abc123", "--param", "max_depth=6", "--param", "eta=0.1",
                   "--metric", "auc=0.8125", "--parent", "1", "--description", "May retrain",
                   "--created", "2024-05-01T12:00:00Z")["metadata"]
    check(meta["created"] == "2024-05-01T12:00:00.000000Z", "created: %s" % meta["created"])
    check(meta["registered_by"] == "tester", "registered_by")
    shown = ok_json("show", "-m", "rank", "-v", "2")
    m = shown["metadata"]
    check(shown["registered"] and shown["on_disk"], "show 2 registered")
    check(m["training_data"] == "logs/rank/2024-05" and m["code_revision"] == "abc123",
          "show 2 lineage")
    check(m["parameters"] == {"max_depth": "6", "eta": "0.1"}, "parameters %s" % m["parameters"])
    check(m["metrics"] == {"auc": 0.8125} and m["parent"] == 1, "metrics/parent")

    fails(("register", "-m", "rank", "-v", "2"), "registered already")
    updated = ok_json("register", "-m", "rank", "-v", "2", "--update", "--metric",
                      "holdout_auc=0.83")["metadata"]
    check(updated["metrics"] == {"auc": 0.8125, "holdout_auc": 0.83}, "update merges metrics")
    check(updated["code_revision"] == "abc123", "update keeps fields")
    fails(("register", "-m", "rank", "-v", "9"), "model 'rank'", os.path.join("rank", "9"))
    fails(("register", "-m", "rank", "-v", "3", "--metric", "auc=high"), "--metric 'auc=high'")
    fails(("register", "-m", "rank", "-v", "3", "--param", "=x"), "--param '=x'")
    fails(("register", "-m", "nosuch", "-v", "1"), "model 'nosuch'")
    # Nothing half-registered by the failures.
    check(not ok_json("show", "-m", "rank", "-v", "3")["registered"], "3 still unregistered")

    text = models("show", "-m", "rank", "-v", "2")
    check(text.returncode == 0 and "auc = 0.8125" in text.stdout, "text show: %r" % text.stdout)


def test_promote_alias_rollback():
    for v, note in ((1, "baseline"), (2, "better auc"), (3, "newest")):
        change = ok_json("promote", "-m", "rank", "-v", str(v), "--note", note)["change"]
        check(change["to"] == v and change["action"] == "promote", "promote %d: %s" % (v, change))
    check(production() == 3, "production is 3")
    same = ok_json("promote", "-m", "rank", "-v", "3")["change"]
    check(same["from"] == 3 and same["to"] == 3, "promote same version is a no-op")

    staging = ok_json("alias", "-m", "rank", "-a", "staging", "-v", "production")["change"]
    check(staging["to"] == 3 and staging["from"] == 0, "alias staging -> production's version")
    check(ok_json("show", "-m", "rank", "-v", "staging")["aliases"] == ["production", "staging"],
          "version 3 carries both aliases")
    # promote accepts an alias as the version.
    ok_json("alias", "-m", "rank", "-a", "candidate", "-v", "2")
    removed = ok_json("alias", "-m", "rank", "-a", "candidate", "--remove")["change"]
    check(removed["from"] == 2 and removed["to"] == 0, "alias --remove")
    fails(("show", "-m", "rank", "-v", "candidate"), "no alias 'candidate'")

    back = ok_json("rollback", "-m", "rank", "--note", "p99 regression")["change"]
    check(back["from"] == 3 and back["to"] == 2, "rollback 3 -> 2: %s" % back)
    check(production() == 2, "production is 2 after rollback")
    check(ok_json("rollback", "-m", "rank")["change"]["to"] == 1, "rollback 2 -> 1")
    fails(("rollback", "-m", "rank"), "model 'rank' alias 'production'", "no earlier version",
          "registry.json")
    check(production() == 1, "failed rollback leaves production")
    check(ok_json("promote", "-m", "rank", "-v", "staging")["change"]["to"] == 3,
          "promote by alias")

    info = ok_json("show", "-m", "rank")
    actions = [(h["action"], h["alias"], h["from"], h["to"]) for h in info["history"]]
    check(actions[:3] == [("promote", "production", 0, 1), ("promote", "production", 1, 2),
                          ("promote", "production", 2, 3)], "history start %s" % actions[:3])
    check(("rollback", "production", 3, 2) in actions, "history has the rollback")
    check(info["history"][0]["note"] == "baseline" and info["history"][0]["by"] == "tester",
          "history note/by")

    fails(("alias", "-m", "rank", "-a", "Prod", "-v", "1"), "model 'rank'", "alias 'Prod'")
    fails(("alias", "-m", "rank", "-a", "42", "-v", "1"), "alias '42'")
    fails(("promote", "-m", "rank", "-v", "7"), "model 'rank' alias 'production'",
          os.path.join("rank", "7"))
    fails(("promote", "-m", "rank", "-v", "nosuch"), "model 'rank' has no alias 'nosuch'")
    fails(("rollback", "-m", "ads"), "model 'ads' has no alias 'production'")

    text = models("show", "-m", "rank")
    check(text.returncode == 0 and "production" in text.stdout and "history:" in text.stdout,
          "text show model")

    with open(os.path.join(REPO, "rank", ".flywheel", "registry.json")) as f:
        stored = json.load(f)
    check(stored["format"] == "flywheel.registry/1" and stored["model"] == "rank", "file header")
    check(stored["aliases"]["production"]["version"] == 3, "file alias")
    leftovers = [n for n in os.listdir(os.path.join(REPO, "rank", ".flywheel")) if ".tmp-" in n]
    check(not leftovers, "temp files left: %s" % leftovers)


def test_concurrent_processes():
    """Sixteen processes at once: half add a parameter, half move `staging`; none is lost."""
    def job(i):
        if i % 2 == 0:
            return models("register", "-m", "ads", "-v", "1", "--update", "--param", "p%d=x" % i)
        return models("alias", "-m", "ads", "-a", "staging", "-v", str(1 + i % 4 // 2),
                      "--note", "n%d" % i)

    os.makedirs(os.path.join(REPO, "ads", "2"), exist_ok=True)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(job, range(16)))
    for r in results:
        check(r.returncode == 0, "concurrent: exit %d %s" % (r.returncode, r.stderr.strip()))
    params = ok_json("show", "-m", "ads", "-v", "1")["metadata"]["parameters"]
    check(sorted(params) == sorted("p%d" % i for i in range(0, 16, 2)),
          "concurrent params: %s" % sorted(params))
    history = ok_json("show", "-m", "ads")["history"]
    # Each recorded move starts where the one before ended: no write was lost or interleaved.
    check(len(history) >= 1 and history[0]["from"] == 0, "alias history recorded")
    for a, b in zip(history, history[1:]):
        check(b["from"] == a["to"] and b["from"] != b["to"], "history chain %s then %s" % (a, b))


def test_errors():
    p = subprocess.run([FLYWHEEL, "models", "list", "--model-repository",
                        os.path.join(REPO, "missing")], stderr=subprocess.PIPE, text=True,
                       stdout=subprocess.PIPE)
    check(p.returncode == 1 and "missing" in p.stderr, "missing repository: %s" % p.stderr)
    fails(("show",), code=2)  # --model is required
    path = os.path.join(REPO, "ads", ".flywheel", "registry.json")
    with open(path, "w") as f:
        f.write('{"format": "flywheel.registry/1", "versions": [')
    fails(("show", "-m", "ads"), path)
    fails(("promote", "-m", "ads", "-v", "1"), path)
    with open(path) as f:
        check(f.read().endswith("["), "a damaged file is not overwritten")


def main():
    global FLYWHEEL, REPO
    if len(sys.argv) != 2:
        sys.exit("usage: models_cli_test.py PATH/TO/flywheel")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="flywheel_models_cli_")
    try:
        REPO = os.path.join(tmp, "repo")
        for model, versions in (("rank", (1, 2, 3)), ("ads", (1,))):
            for v in versions:
                os.makedirs(os.path.join(REPO, model, str(v)))
        test_list_and_register()
        test_promote_alias_rollback()
        test_concurrent_processes()
        test_errors()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("models_cli_test: all checks passed")


if __name__ == "__main__":
    main()
