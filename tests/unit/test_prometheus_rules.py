"""deploy/prometheus: promtool checks the rules and runs their unit tests; every alert has both."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT, require

RULES_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "strangler-rules.yml"
RULE_TESTS = RULES_DIR / "strangler-rules.test.yml"


def promtool() -> str:
    """The promtool binary (Debian's prometheus package, scripts/ensure-system-packages.sh)."""
    found = shutil.which("promtool")
    require(found is not None, "promtool is missing (apt-get install -y prometheus)")
    assert found is not None
    return found


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """promtool with ``args``, from the rules' folder (the test file names the rules relatively)."""
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def alerts() -> dict[str, dict[str, Any]]:
    """The alerting rules of the shipped file, by name."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_check_rules_passes() -> None:
    """promtool finds the rules file valid (syntax, PromQL, templates)."""
    checked = run_promtool("check", "rules", RULES)

    assert (checked.returncode, "SUCCESS" in checked.stdout) == (0, True), checked.stderr


def test_promtool_unit_tests_pass() -> None:
    """Every case of strangler-rules.test.yml holds."""
    tested = run_promtool("test", "rules", RULE_TESTS.name)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """Each alert has a unit test expecting it to fire and one expecting it to stay quiet."""
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case.get("alert_rule_test", [])]
    firing = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}

    assert (firing, quiet) == (set(alerts()), set(alerts()))


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_says_what_to_do(name: str) -> None:
    """An alert carries a severity, a summary, a description and a runbook."""
    rule = alerts()[name]

    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])
