#!/usr/bin/env python3
"""End-to-end test of `flywheel loop status|check`.

Usage: /usr/bin/python3 tests/loop_cli_test.py PATH/TO/flywheel

Writes loop history files (<repo>/<model>/.flywheel/loop-<name>.jsonl, one JSON object a line,
docs/lifecycle.md) by hand, with runs that were promoted, stopped at the gate, failed at a step,
rolled back and one still running plus a torn last line, and checks the status table, its JSON
and the filters; then checks good and broken loop definitions.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

FLYWHEEL = None
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([FLYWHEEL, "loop"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def event(run_number, step, status, minute, detail="", champion=0, candidate=0, figures=None,
          loop="fraud-retrain", model="fraud"):
    return {"time": "2024-05-01T12:%02d:00.000000Z" % minute, "loop": loop, "model": model,
            "run": run_number, "step": step, "status": status, "detail": detail,
            "champion": champion, "candidate": candidate, "figures": figures or {}}


def write_history(repo, model, loop, events, torn_tail=""):
    folder = os.path.join(repo, model, ".flywheel")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "loop-%s.jsonl" % loop), "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
        f.write(torn_tail)


def fraud_events():
    ev = []
    # 1: promoted
    for i, step in enumerate(["trigger", "export", "train", "register", "evaluate", "gate",
                              "canary"]):
        ev.append(event(1, step, "ok", i, champion=1, candidate=2 if i >= 3 else 0,
                        figures={"candidate_auc": 0.93, "champion_auc": 0.81}
                        if step == "evaluate" else None))
    ev.append(event(1, "promote", "ok", 8, "production -> version 2", 1, 2))
    ev.append(event(1, "done", "ok", 9, "promoted", 1, 2))
    # 2: stopped at the gate
    ev.append(event(2, "trigger", "ok", 10, "500 new labels", 2))
    ev.append(event(2, "evaluate", "ok", 11, "", 2, 3))
    ev.append(event(2, "gate", "failed", 12, "candidate auc 0.80 is not 0.01 above 0.93", 2, 3))
    ev.append(event(2, "retire", "ok", 13, "version 3 archived", 2, 3))
    ev.append(event(2, "done", "failed", 13, "stopped_at_gate", 2, 3))
    # 3: the training command failed
    ev.append(event(3, "trigger", "ok", 20, "every 24h", 2))
    ev.append(event(3, "train", "started", 21, "", 2))
    ev.append(event(3, "train", "failed", 22, "exit code 3: ValueError: no rows", 2))
    ev.append(event(3, "done", "failed", 23, "failed", 2))
    # 4: rolled back during its canary
    ev.append(event(4, "trigger", "ok", 30, "", 2))
    ev.append(event(4, "canary", "started", 31, "weight 0.1", 2, 5))
    ev.append(event(4, "canary", "failed", 32, "error rate 0.2 above 0.01", 2, 5))
    ev.append(event(4, "rollback", "ok", 33, "candidate 5 rolled back", 2, 5))
    # 5: still running
    ev.append(event(5, "trigger", "ok", 40, "drift psi 0.31 on amount", 2))
    ev.append(event(5, "export", "started", 41, "", 2))
    return ev


def test_status(repo):
    write_history(repo, "fraud", "fraud-retrain", fraud_events(),
                  torn_tail='{"time":"2024-05-01T12:42:00.000000Z","loop":"fr')
    write_history(repo, "rank", "rank-nightly",
                  [event(1, "trigger", "ok", 0, loop="rank-nightly", model="rank"),
                   event(1, "export", "skipped", 1, "120 labelled rows, fewer than min_rows 200",
                         loop="rank-nightly", model="rank"),
                   event(1, "done", "failed", 2, "not_enough_data", loop="rank-nightly",
                         model="rank")])
    os.makedirs(os.path.join(repo, "idle", "1"))  # a model without loops

    p = run("status", "--model-repository", repo)
    check(p.returncode == 0, "status: exit %d, stderr %s" % (p.returncode, p.stderr))
    out = p.stdout
    print(out)
    check("loop fraud-retrain (model fraud): 5 runs" in out, "fraud header")
    check("loop rank-nightly (model rank): 1 run" in out, "rank header")
    check("1 unreadable line skipped" in out, "torn line counted")
    fraud = out[:out.index("loop rank-nightly")]
    fraud_rows = {l.split()[0]: l for l in fraud.splitlines() if l.strip()[:1].isdigit()}
    check("promoted" in fraud_rows.get("1", ""), "run 1 promoted: %r" % fraud_rows.get("1"))
    check("stopped at gate" in fraud_rows.get("2", ""), "run 2 gate")
    check("not 0.01 above" in fraud_rows.get("2", ""), "run 2 detail")
    check("failed at train" in fraud_rows.get("3", ""), "run 3 failed at train")
    check("exit code 3" in fraud_rows.get("3", ""), "run 3 detail")
    check("rolled back" in fraud_rows.get("4", ""), "run 4 rolled back")
    check("running: export" in fraud_rows.get("5", ""), "run 5 running")
    check("steps of run 5:" in fraud, "steps of the last run")
    check("drift psi 0.31 on amount" in fraud, "last run's trigger step")
    check("skipped at export" in out, "rank skipped at export")

    p = run("status", "--model-repository", repo, "--json")
    check(p.returncode == 0, "status --json exit %d" % p.returncode)
    doc = json.loads(p.stdout)
    loops = {l["loop"]: l for l in doc["loops"]}
    check(sorted(loops) == ["fraud-retrain", "rank-nightly"], "json loops %s" % sorted(loops))
    fr = loops["fraud-retrain"]
    check(fr["model"] == "fraud" and fr["bad_lines"] == 1 and fr["total_runs"] == 5, "json meta")
    outcomes = [r["outcome"] for r in fr["runs"]]
    check(outcomes == ["promoted", "stopped_at_gate", "failed", "rolled_back", "running"],
          "json outcomes %s" % outcomes)
    check(fr["runs"][2]["step"] == "train", "failed step")
    check(fr["runs"][0]["champion"] == 1 and fr["runs"][0]["candidate"] == 2, "run 1 versions")
    evaluate = [s for s in fr["runs"][0]["steps"] if s["step"] == "evaluate"][0]
    check(evaluate["figures"] == {"candidate_auc": 0.93, "champion_auc": 0.81}, "figures")
    check(fr["history_file"].endswith("fraud/.flywheel/loop-fraud-retrain.jsonl"), "history path")

    rank = loops["rank-nightly"]["runs"][0]
    check(rank["outcome"] == "not_enough_data", "the done step's outcome word: %s" % rank["outcome"])
    check(rank["outcome_text"] == "skipped at export" and rank["step"] == "export",
          "rank text %s" % rank["outcome_text"])

    p = run("status", "--model-repository", repo, "--loop", "fraud-retrain", "--last", "2",
            "--json")
    doc = json.loads(p.stdout)
    check(len(doc["loops"]) == 1, "--loop filters")
    check([r["run"] for r in doc["loops"][0]["runs"]] == [4, 5], "--last 2")

    p = run("status", "--model-repository", repo, "-m", "rank", "--json")
    doc = json.loads(p.stdout)
    check([l["loop"] for l in doc["loops"]] == ["rank-nightly"], "--model filters")

    p = run("status", "--model-repository", repo, "-m", "idle")
    check(p.returncode == 0 and "no loop history" in p.stdout, "model without loops")

    p = run("status", "--model-repository", repo, "--loop", "nope")
    check(p.returncode == 1 and "no history of loop 'nope'" in p.stderr, "unknown loop: %s" % p.stderr)
    p = run("status", "--model-repository", repo, "-m", "absent")
    check(p.returncode == 1 and "model 'absent'" in p.stderr, "unknown model: %s" % p.stderr)
    p = run("status", "--model-repository", os.path.join(repo, "nothing"))
    check(p.returncode == 1 and "is not a folder" in p.stderr, "missing repository")
    p = run("status", "--model-repository", repo, "--last", "0")
    check(p.returncode == 1 and "--last" in p.stderr, "--last 0")


GOOD = """name: fraud-retrain
model: fraud
trigger:
  new_labels: 500
  min_interval: 10m
train:
  command: ["/usr/bin/python3", "train.py", "--train", "{train}", "--out", "{output}"]
  model_file: xgboost.json
rollout:
  policy: ab
  sticky_parameter: user_id
"""


def test_check(tmp):
    loops = os.path.join(tmp, "loops")
    os.makedirs(loops)
    good = os.path.join(loops, "fraud.yaml")
    with open(good, "w") as f:
        f.write(GOOD)
    with open(os.path.join(loops, "rank.yml"), "w") as f:
        f.write(GOOD.replace("fraud-retrain", "rank-nightly").replace("model: fraud",
                                                                      "model: rank"))
    p = run("check", good)
    check(p.returncode == 0, "check good: %s" % p.stderr)
    check("fraud-retrain (%s): retrains model fraud" % good in p.stdout, "check prints it")
    check("ab, weight 0.1, sticky_parameter user_id" in p.stdout, "rollout line: %s" % p.stdout)
    check("1 loop definition OK" in p.stdout, "check summary")

    p = run("check", loops, "--json")
    check(p.returncode == 0, "check dir: %s" % p.stderr)
    doc = json.loads(p.stdout)
    check([l["name"] for l in doc["loops"]] == ["fraud-retrain", "rank-nightly"], "check dir names")
    d = doc["loops"][0]
    check(d["trigger"] == {"new_labels": 500, "min_interval": "10m"}, "trigger %s" % d["trigger"])
    check(d["train"]["timeout"] == "30m" and d["data"]["min_rows"] == 100, "defaults filled in")
    check(d["evaluate"] == {"metric": "auc", "margin": 0.0}, "evaluate defaults")

    bad_cases = [
        (GOOD.replace("  min_interval: 10m\n", "  min_interval: 10m\n  every_day: true\n"),
         ":6: trigger.every_day: unknown field"),
        (GOOD.replace("model_file: xgboost.json", "model_file: out/xgboost.json"),
         ":8: train.model_file:"),
        (GOOD.replace("  sticky_parameter: user_id\n", ""), ":9: rollout.sticky_parameter:"),
        (GOOD.replace("new_labels: 500", "new_labels: -1"), ":4: trigger.new_labels: must be > 0"),
        (GOOD.replace("{output}", "{out}"), ":7: train.command[5]: unknown placeholder {out}"),
    ]
    for i, (text, needle) in enumerate(bad_cases):
        path = os.path.join(tmp, "bad%d.yaml" % i)
        with open(path, "w") as f:
            f.write(text)
        p = run("check", path)
        check(p.returncode == 1, "bad %d: exit %d" % (i, p.returncode))
        check((path + needle) in p.stderr, "bad %d: %r lacks %r" % (i, p.stderr, path + needle))

    with open(os.path.join(loops, "again.yaml"), "w") as f:
        f.write(GOOD)
    p = run("check", loops)
    check(p.returncode == 1 and "loop 'fraud-retrain' is defined in" in p.stderr,
          "duplicate names: %s" % p.stderr)
    p = run("check", os.path.join(tmp, "missing.yaml"))
    check(p.returncode == 1 and "missing.yaml" in p.stderr, "missing file: %s" % p.stderr)


def main():
    global FLYWHEEL
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    FLYWHEEL = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="loop_cli_test_")
    try:
        repo = os.path.join(tmp, "repo")
        os.makedirs(repo)
        test_status(repo)
        test_check(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d failure(s)" % len(FAILURES))
        return 1
    print("loop_cli_test: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
