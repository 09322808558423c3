#!/usr/bin/python3
"""Checks the Prometheus files in deploy/prometheus/ with Debian's promtool: the alert rules
parse (`promtool check rules`), the scrape config with its rule files is valid
(`promtool check config`), and every rule behaves as its unit tests on synthetic series say
(`promtool test rules alerts_test.yml`). That the drift rule fires against a running server is
tests/e2e/monitoring_test.py's job.

Usage (from the repository root):
    /usr/bin/python3 tests/e2e/alert_rules_test.py PATH/TO/flywheel [unittest args]
"""
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy", "prometheus")
PROMTOOL = "/usr/bin/promtool"
INSTALL_HINT = "run scripts/install-deps.sh (it installs Debian's prometheus package)"


def promtool(*args):
    p = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=DEPLOY)
    return p.returncode, p.stdout + p.stderr


class AlertRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(PROMTOOL, os.X_OK):
            raise AssertionError(f"{PROMTOOL} is missing: {INSTALL_HINT}")

    def test_rules_parse(self):
        rc, out = promtool("check", "rules", "alerts.yml")
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)

    def test_config_is_valid(self):
        rc, out = promtool("check", "config", "prometheus.yml")
        self.assertEqual(rc, 0, out)
        self.assertIn("1 rule files found", out)

    def test_rules_pass_their_unit_tests(self):
        rc, out = promtool("test", "rules", "alerts_test.yml")
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)

    def test_every_alert_has_a_unit_test(self):
        with open(os.path.join(DEPLOY, "alerts.yml")) as f:
            alerts = set(re.findall(r"^\s*- alert:\s*(\S+)", f.read(), re.M))
        with open(os.path.join(DEPLOY, "alerts_test.yml")) as f:
            tested = set(re.findall(r"alertname:\s*(\S+)", f.read()))
        self.assertGreaterEqual(len(alerts), 8)
        self.assertEqual(alerts - tested, set())

def main():
    if len(sys.argv) < 2:
        sys.exit("usage: alert_rules_test.py PATH/TO/flywheel [unittest args]")
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
