#!/usr/bin/env python3
"""Registry aliases in inference requests: `flywheel models promote|rollback` on the repository a
running `flywheel serve` serves, or through its admin API (/v1/registry/), and requests to
/v2/models/simple/versions/production/infer (or with the model_version parameter) reach the version
the alias names at that moment."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_util import FlywheelServer, copy_repository  # noqa: E402

FLYWHEEL = None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REQUEST = {"inputs": [
    {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))},
    {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [1] * 16},
]}


def post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class AliasesTest(unittest.TestCase):
    def setUp(self):
        self.repo = copy_repository(os.path.join(ROOT, "examples", "models", "simple"))
        # One model folder `simple` with versions 1 and 2, all versions served.
        model = os.path.join(self.repo, "simple")
        os.makedirs(model)
        for entry in os.listdir(self.repo):
            if entry != "simple":
                shutil.move(os.path.join(self.repo, entry), model)
        shutil.copytree(os.path.join(model, "1"), os.path.join(model, "2"))
        with open(os.path.join(model, "config.pbtxt"), "a") as f:
            f.write("version_policy { all {} }\n")

    def tearDown(self):
        shutil.rmtree(self.repo, ignore_errors=True)

    def models(self, *args):
        out = subprocess.run([FLYWHEEL, "models", *args, "--model-repository", self.repo],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def version_served(self, url, timeout=10):
        status, body = post(url, REQUEST)
        self.assertEqual(status, 200, body)
        return body["model_version"]

    def wait_for_version(self, url, want, timeout=10):
        # The server rereads a changed registry file at most once a second.
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.version_served(url)
            if got == want:
                return
            time.sleep(0.2)
        self.fail(f"{url} served version {got}, expected {want}")

    def test_promote_and_rollback_move_the_served_version(self):
        with FlywheelServer(FLYWHEEL, ["--model-repository", self.repo]) as srv:
            url = srv.http_url + "/v2/models/simple/versions/production/infer"
            status, body = post(url, REQUEST)
            self.assertEqual(status, 404, body)
            self.assertIn("no alias 'production'", body["error"])

            self.models("promote", "-m", "simple", "-v", "1")
            self.wait_for_version(url, "1")
            self.models("promote", "-m", "simple", "-v", "2")
            self.wait_for_version(url, "2")
            # The same alias as a request parameter, for clients that cannot change the path.
            with_param = dict(REQUEST, parameters={"model_version": "production"})
            status, body = post(srv.http_url + "/v2/models/simple/infer", with_param)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model_version"], "2")
            self.models("rollback", "-m", "simple")
            self.wait_for_version(url, "1")
            # Numbers still address versions directly.
            self.assertEqual(
                self.version_served(srv.http_url + "/v2/models/simple/versions/2/infer"), "2")
            status, body = post(srv.http_url + "/v2/models/simple/versions/Bad!/infer", REQUEST)
            self.assertEqual(status, 400, body)

    def test_admin_api_promotes_while_serving(self):
        token = "e2e-admin"
        with FlywheelServer(FLYWHEEL, ["--model-repository", self.repo,
                                       "--admin-token", token]) as srv:
            api = srv.http_url + "/v1/registry/models/simple"
            url = srv.http_url + "/v2/models/simple/versions/production/infer"
            auth = {"Authorization": "Bearer " + token}
            # Changes need the token; reads do not.
            status, body = post(api + "/promote", {"version": "2"})
            self.assertEqual(status, 401, body)
            status, body = post(api + "/promote", {"version": "2"},
                                {"Authorization": "Bearer wrong"})
            self.assertEqual(status, 403, body)

            status, body = post(api + "/versions/2", {"metrics": {"auc": 0.93}, "by": "e2e"}, auth)
            self.assertEqual(status, 200, body)
            status, body = post(api + "/promote", {"version": "1"}, auth)
            self.assertEqual(status, 200, body)
            self.wait_for_version(url, "1")
            status, body = post(api + "/promote",
                                {"version": 2, "by": "e2e", "note": "auc 0.93"}, auth)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["change"]["from"], 1)
            self.assertEqual(body["change"]["to"], 2)
            # The server's own registry: the alias serves the new version at once.
            self.assertEqual(self.version_served(url), "2")
            with urllib.request.urlopen(api + "/versions/production", timeout=10) as r:
                shown = json.loads(r.read())
            self.assertEqual(shown["version"], 2)
            self.assertEqual(shown["metadata"]["metrics"]["auc"], 0.93)

            # The CLI reads the same registry file.
            cli = json.loads(self.models("show", "-m", "simple", "--json"))
            self.assertEqual(cli["aliases"]["production"]["version"], 2)
            self.assertEqual(cli["history"][-1]["by"], "e2e")
            self.assertEqual(cli["history"][-1]["note"], "auc 0.93")

            status, body = post(api + "/rollback", {}, auth)
            self.assertEqual(status, 200, body)
            self.assertEqual(self.version_served(url), "1")
            status, body = post(api + "/rollback", {}, auth)
            self.assertEqual(status, 409, body)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: aliases_test.py FLYWHEEL_BINARY")
    FLYWHEEL = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
