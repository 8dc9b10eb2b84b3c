"""promtool checks the Prometheus config and rules and runs their unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool_ok(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_rules_pass_promtool_check(promtool):
    assert "SUCCESS: 13 rules found" in promtool_ok(promtool, "check", "rules", "alerts.yml")


def test_config_passes_promtool_check(promtool):
    promtool_ok(promtool, "check", "config", "prometheus.yml")


def test_rule_unit_tests_pass(promtool):
    assert "SUCCESS" in promtool_ok(promtool, "test", "rules", "alerts_test.yml")


def test_rule_unit_tests_can_fail(promtool, tmp_path):
    # The same tests against a rule file whose drift alert never fires must fail.
    rules = (DEPLOY / "alerts.yml").read_text()
    (tmp_path / "alerts.yml").write_text(rules.replace(
        "highway_gate_drift_score > on", "highway_gate_drift_score > 100 * on"))
    (tmp_path / "alerts_test.yml").write_text((DEPLOY / "alerts_test.yml").read_text())
    done = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "HighwayGateDrift" in done.stdout + done.stderr
