"""FileRolloutController: atomic flag-file rewrites, the audit log, refused input."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from strangler.exceptions import RolloutError
from strangler.flags import load_flag_document, read_flag
from strangler.rollout.controller import (
    FileRolloutController,
    RolloutChange,
    parse_percentage,
    parse_variant_weights,
)
from tests.unit.flags.conftest import flag_document, write_flag


@pytest.fixture
def controller(flag_file: Path, tmp_path: Path) -> FileRolloutController:
    """A controller on a copy of the shipped flag file, auditing into tmp_path/data."""
    return FileRolloutController(flag_file, tmp_path / "data" / "rollout-audit.jsonl")


def _file_state(path: Path) -> tuple[bool, int, dict[str, int]]:
    definition = read_flag(load_flag_document(path.read_text(), source=str(path)))
    assert definition is not None
    return definition.enabled, definition.rollout, dict(definition.variant_weights)


def test_show_reads_the_file(controller: FileRolloutController, flag_file: Path) -> None:
    """show() gives the shipped state: enabled, 0% shadow-first (stage off), mode, source."""
    state = controller.show()
    assert state.to_dict() == {
        "flag": "city_orders_instant_processing",
        "mode": "embedded",
        "source": str(flag_file),
        "enabled": True,
        "rollout": 0,
        "variants": {"instant": 0, "shadow": 100},
        "stage": "off",
        "shares": {"instant": 0.0, "shadow": 0.0},
        "revision": state.revision,
    }


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            lambda c: c.set_percentage(25, actor="ana", reason="step"),
            (True, 25, {"instant": 0, "shadow": 1000}),
            id="set",
        ),
        pytest.param(
            lambda c: c.kill(actor="ana", reason="incident"),
            (False, 0, {"instant": 0, "shadow": 1000}),
            id="kill",
        ),
        pytest.param(
            lambda c: c.set_variants({"instant": 70, "shadow": 30}, actor="ana", reason="split"),
            (True, 0, {"instant": 700, "shadow": 300}),
            id="variants",
        ),
        pytest.param(
            lambda c: c.set_variants({"instant": 100}, actor="ana", reason="instant only"),
            (True, 0, {"instant": 1000, "shadow": 0}),
            id="variants-missing-is-zero",
        ),
    ],
)
def test_commands_rewrite_the_file(
    controller: FileRolloutController,
    flag_file: Path,
    command: Callable[[FileRolloutController], RolloutChange],
    expected: tuple[bool, int, dict[str, int]],
) -> None:
    """Each command leaves a valid flag file in the state it asked for."""
    change = command(controller)
    assert _file_state(flag_file) == expected
    assert (change.changed, change.after.routing()) == (True, controller.show().routing())
    assert change.after.revision != change.before.revision


def test_enable_after_kill_restores_the_rollout(
    controller: FileRolloutController, flag_file: Path
) -> None:
    """kill then enable brings back the same rollout and the same revision."""
    before = controller.set_percentage(40, actor="ana").after
    controller.kill(actor="ana", reason="incident")
    after = controller.enable(actor="ana", reason="fixed").after
    assert (after.enabled, after.rollout, after.revision) == (True, 40, before.revision)
    assert _file_state(flag_file)[:2] == (True, 40)


def test_audit_log_records_each_change(controller: FileRolloutController) -> None:
    """Every accepted command appends when, who, what, from, to and why."""
    controller.set_percentage(25, actor="ana", reason="first step")
    controller.kill(actor="bo", reason="incident 42")
    records = controller.audit.records()
    assert [(r["actor"], r["action"], r["reason"]) for r in records] == [
        ("ana", "set_percentage", "first step"),
        ("bo", "kill", "incident 42"),
    ]
    first = records[0]
    assert first["from"] == {
        "enabled": True,
        "rollout": 0,
        "variants": {"instant": 0, "shadow": 100},
    }
    assert first["to"] == {
        "enabled": True,
        "rollout": 25,
        "variants": {"instant": 0, "shadow": 100},
    }
    assert (first["stage_from"], first["stage_to"], first["no_evidence"]) == (
        "off",
        "shadow",
        False,
    )
    assert (first["flag"], first["mode"], first["changed"]) == (
        "city_orders_instant_processing",
        "embedded",
        True,
    )
    assert datetime.fromisoformat(first["at"]).tzinfo is not None
    assert first["revision_to"] == records[1]["revision_from"]


def test_repeated_command_changes_nothing_but_is_audited(
    controller: FileRolloutController, flag_file: Path
) -> None:
    """Setting the percentage it already has leaves the file untouched, audited as unchanged."""
    controller.set_percentage(25, actor="ana")
    before = flag_file.stat()
    change = controller.set_percentage(25, actor="ana")
    after = flag_file.stat()
    assert change.changed is False
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [r["changed"] for r in controller.audit.records()] == [True, False]


def test_rewrite_is_atomic_and_keeps_the_file_mode(
    controller: FileRolloutController, flag_file: Path
) -> None:
    """The file is replaced by rename (new inode), keeps its mode, and leaves no temp file."""
    flag_file.chmod(0o640)
    inode = flag_file.stat().st_ino
    controller.set_percentage(10, actor="ana")
    assert flag_file.stat().st_ino != inode
    assert stat.S_IMODE(flag_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in flag_file.parent.iterdir()) == ["data", "flag.json"]
    assert flag_file.read_text().endswith("}\n")


def test_rewrite_keeps_the_rest_of_the_file(
    controller: FileRolloutController, flag_file: Path
) -> None:
    """Fields rollout control does not own (description, other flags) are kept."""
    document = json.loads(flag_file.read_text())
    document["features"].append({"name": "other_flag", "enabled": False, "strategies": []})
    write_flag(flag_file, document)
    controller.set_percentage(5, actor="ana")
    rewritten = json.loads(flag_file.read_text())
    assert rewritten["features"][1] == {"name": "other_flag", "enabled": False, "strategies": []}
    assert rewritten["features"][0]["description"] == document["features"][0]["description"]


def _pct(value: Any) -> Callable[[FileRolloutController], RolloutChange]:
    return lambda c: c.set_percentage(value, actor="ana")


def _weights(value: Any) -> Callable[[FileRolloutController], RolloutChange]:
    return lambda c: c.set_variants(value, actor="ana")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param(_pct(150), "between 0 and 100, got 150", id="pct-150"),
        pytest.param(_pct(-1), "between 0 and 100, got -1", id="pct-negative"),
        pytest.param(_pct(2.5), "whole number", id="pct-float"),
        pytest.param(_pct(True), "whole number", id="pct-bool"),
        pytest.param(_pct("25"), "whole number", id="pct-string"),
        pytest.param(_weights({"instant": 70, "turbo": 30}), "unknown variant 'turbo'", id="name"),
        pytest.param(_weights({"instant": 70, "shadow": 20}), "add up to 100, got 90", id="sum"),
        pytest.param(_weights({"instant": 101}), "0..100", id="weight-range"),
        pytest.param(_weights({}), "at least one variant", id="no-weights"),
        pytest.param(lambda c: c.set_percentage(5, actor=" "), "needs an actor", id="no-actor"),
    ],
)
def test_bad_input_writes_nothing(
    controller: FileRolloutController,
    flag_file: Path,
    command: Callable[[FileRolloutController], RolloutChange],
    message: str,
) -> None:
    """Bad input raises RolloutError with a clear message; file and audit log untouched."""
    original = flag_file.read_bytes()
    with pytest.raises(RolloutError, match=message):
        command(controller)
    assert flag_file.read_bytes() == original
    assert not controller.audit.path.exists()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param(json.dumps(flag_document(rollout=120)), id="rollout-120"),
    ],
)
def test_invalid_flag_file_is_refused(
    controller: FileRolloutController, flag_file: Path, content: str
) -> None:
    """A flag file that fails validation is refused with the problem; nothing is written."""
    flag_file.write_text(content)
    with pytest.raises(RolloutError, match="before changing the rollout"):
        controller.set_percentage(10, actor="ana")
    assert flag_file.read_text() == content
    assert not controller.audit.path.exists()


def test_missing_flag_file_is_refused(tmp_path: Path) -> None:
    """A missing flag file is a RolloutError naming the setting to fix."""
    controller = FileRolloutController(tmp_path / "nope.json", tmp_path / "audit.jsonl")
    with pytest.raises(RolloutError, match="STRANGLER_FLAGS_FILE"):
        controller.show()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("25", 25), (" 0 ", 0), ("100%", 100)],
    ids=["plain", "spaces", "percent-sign"],
)
def test_parse_percentage(text: str, expected: int) -> None:
    """Whole percentages parse, with or without a % sign."""
    assert parse_percentage(text) == expected


@pytest.mark.parametrize("text", ["150", "-5", "2.5", "abc", ""], ids=str)
def test_parse_percentage_refuses(text: str) -> None:
    """Anything but a whole number 0..100 is refused with the offending text."""
    with pytest.raises(RolloutError, match="0"):
        parse_percentage(text)


def test_parse_variant_weights() -> None:
    """NAME=PERCENT pairs parse, spaces allowed."""
    assert parse_variant_weights(" instant=70 , shadow = 30 ") == {"instant": 70, "shadow": 30}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("instant70", "NAME=PERCENT pairs"),
        ("instant=70,instant=30", "given twice"),
        ("instant=seventy,shadow=30", "whole percentage"),
        ("instant=70,foo=30", "unknown variant 'foo'"),
        ("instant=60,shadow=30", "add up to 100"),
    ],
    ids=["no-equals", "repeated", "not-a-number", "unknown", "sum"],
)
def test_parse_variant_weights_refuses(text: str, message: str) -> None:
    """Malformed, repeated, unknown or unbalanced weights are refused clearly."""
    with pytest.raises(RolloutError, match=message):
        parse_variant_weights(text)
