"""docs/operations.md follows the shipped rules: one section per alert with its exact query."""

from __future__ import annotations

import re

import yaml

from tests.helpers import REPO_ROOT

DOC = REPO_ROOT / "docs" / "operations.md"
RULES = REPO_ROOT / "deploy" / "prometheus" / "strangler-rules.yml"
_SECTION = re.compile(r"^### (\w+)\n\n```promql\n(.*?)^```$", re.M | re.S)


def rules() -> list[dict[str, str]]:
    """Every rule of the shipped file."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def flat(expr: str) -> str:
    """A query with its whitespace collapsed, as the doc and the YAML fold it differently."""
    return " ".join(expr.split())


def test_each_alert_has_a_section_with_its_exact_expression() -> None:
    """The doc's alert sections are the rules file's alerts, each opening with its query."""
    documented = {name: flat(expr) for name, expr in _SECTION.findall(DOC.read_text())}
    shipped = {rule["alert"]: flat(rule["expr"]) for rule in rules() if "alert" in rule}

    assert documented == shipped


def test_each_recording_rule_is_named() -> None:
    """Every recorded series the dashboard and alerts use is explained on the page."""
    text = DOC.read_text()

    assert [
        rule["record"] for rule in rules() if "record" in rule and rule["record"] not in text
    ] == []
