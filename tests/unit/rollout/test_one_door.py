"""One door for a rollout change: the same timeline rule at the CLI, the admin API and the gate.

Each door changes the flag through the controller, which audits the change and then puts
it on the ledger's rollout timeline. Here the timeline is a real SQLite ledger whose
``rollout_events`` table refuses inserts (a trigger), while every other table works: the
flag change stands, the audit log has it, the door answers a success (exit 0, 200, or the
gate's own decision code) and names the LedgerError in one and the same sentence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from strangler.cli.main import main
from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderStatus, Route
from strangler.rollout.controller import (
    FileRolloutController,
    RolloutChange,
    TimelineRecorder,
    record_on_timeline,
)
from strangler.settings import Settings
from strangler.sidecar.app import create_app
from tests.unit.ledger.support import make_decision, make_order
from tests.unit.sidecar.conftest import AUTH, TOKEN
from tests.unit.sidecar.fakes import FakePool, FakeRuntime

REFUSAL = "the rollout timeline refuses writes (test trigger)"
#: What the CLI doors print on stderr (a gate hold or failure says "decision"); the admin
#: API answers ``timeline_error``, the tail from "LedgerError: ".
WARNING = (
    "warning: the ledger did not record this {} on its rollout timeline "
    "(it is made and audited): LedgerError: "
)


@pytest.fixture
def settings(flag_file: Path, tmp_path: Path) -> Settings:
    """Embedded mode on a copy of the shipped flag, the ledger and audit log in tmp_path."""
    return Settings(flags_file=flag_file, data_dir=tmp_path / "data", admin_token=TOKEN)


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The same settings in the environment, for the CLI doors."""
    monkeypatch.setenv("STRANGLER_FLAGS_FILE", str(settings.flags_file))
    monkeypatch.setenv("STRANGLER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("STRANGLER_LEGACY_URL", "http://127.0.0.1:9")
    return settings


@pytest.fixture
def ledger(settings: Settings) -> Iterator[SqlLedger]:
    """The settings' SQLite ledger, open for the test to arrange and inspect."""
    ledger = ledger_from_url(settings.effective_ledger_url)
    yield ledger
    ledger.close()


def refuse_timeline(ledger: SqlLedger) -> None:
    """Make the ledger's rollout timeline refuse every write; the rest keeps working."""
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_rollout_events BEFORE INSERT ON rollout_events "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def audited(settings: Settings) -> list[dict[str, object]]:
    """The audit log's records, oldest first."""
    lines = settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def controller(settings: Settings, ledger: SqlLedger | None = None) -> FileRolloutController:
    """The settings' file controller, recording on ``ledger`` when given."""
    return FileRolloutController(settings.flags_file, settings.audit_log, timeline=ledger)


def rollout(*args: str) -> Result:
    """Run ``strangler rollout ARGS`` in process."""
    return CliRunner().invoke(main, ["rollout", *args])


def warned(stderr: str, what: str = "change") -> str:
    """The LedgerError the door's warning line names (fails when there is no such line)."""
    prefix = WARNING.format(what)
    (line,) = [line for line in stderr.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix)


def test_rollout_set_keeps_the_change_and_warns(env: Settings, ledger: SqlLedger) -> None:
    """`rollout set`: the flag moves, the audit has it, exit 0, one warning naming the error."""
    refuse_timeline(ledger)
    result = rollout("set", "20", "--reason", "first step", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stage off -> shadow, rollout 0% -> 20%")
    assert REFUSAL in warned(result.stderr)
    assert controller(env).show().rollout == 20
    assert (audited(env)[-1]["to"], audited(env)[-1]["reason"]) == (
        {"enabled": True, "rollout": 20, "variants": {"instant": 0, "shadow": 100}},
        "first step",
    )
    assert ledger.rollout_events() == []


def test_rollout_set_records_on_the_timeline_once(env: Settings, ledger: SqlLedger) -> None:
    """With a working ledger the CLI change is on the timeline once, with no warning."""
    result = rollout("set", "20", "--reason", "first step", "--actor", "ana")
    assert (result.exit_code, "warning" in result.stderr) == (0, False)
    (event,) = ledger.rollout_events()
    assert (event.kind, event.actor, event.to_rollout) == ("set", "ana", 20)


def test_the_admin_api_keeps_the_change_and_says_so(settings: Settings, ledger: SqlLedger) -> None:
    """PUT /_strangler/rollout: 200 with the rollout after, timeline_recorded false naming it."""
    refuse_timeline(ledger)
    runtime = FakeRuntime(ledger=ledger)  # type: ignore[arg-type]  # the sidecar's real ledger
    app = create_app(
        settings, runtime=runtime, upstream_pool=FakePool(), readiness_probe=lambda _url: None
    )
    with capture_logs() as logs, app.test_client() as client:
        answer = client.put(
            "/_strangler/rollout", json={"percentage": 20, "reason": "first step"}, headers=AUTH
        )
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body is not None
    assert (body["rollout"], body["changed"], body["timeline_recorded"]) == (20, True, False)
    assert body["timeline_error"].startswith("LedgerError: ")
    assert REFUSAL in body["timeline_error"]
    assert controller(settings).show().rollout == 20
    assert audited(settings)[-1]["to"]["rollout"] == 20  # type: ignore[index]
    assert ledger.rollout_events() == []
    assert [log["event"] for log in logs if log["log_level"] == "error"] == [
        "rollout_event_not_in_ledger"
    ]


def _gate_ready(settings: Settings, ledger: SqlLedger, orders: int, status: OrderStatus) -> None:
    """The rollout at 5 % on the timeline, then ``orders`` instant orders in its window."""
    controller(settings, ledger).set_percentage(5, actor="ana", reason="step 5%")
    for n in range(orders):
        ledger.record_received(make_order(f"o-{n}"), source="test")
        ledger.pin_decision(f"o-{n}", make_decision(Route.INSTANT, rollout=5))
        ledger.transition(f"o-{n}", status)


@pytest.mark.parametrize(
    ("orders", "status", "args", "code", "action", "enabled", "rollout_after"),
    [
        (3, OrderStatus.FULFILLED, [], 0, "set_percentage", True, 25),
        (1, OrderStatus.FULFILLED, [], 3, "gate_hold", True, 5),
        (20, OrderStatus.FAILED, [], 4, "gate_fail", True, 5),
        (20, OrderStatus.FAILED, ["--rollback-on-fail"], 5, "kill", False, 5),
    ],
    ids=["advanced", "held", "failed", "rolled-back"],
)
def test_rollout_advance_keeps_its_decision_code_and_warns(
    env: Settings,
    ledger: SqlLedger,
    orders: int,
    status: OrderStatus,
    args: list[str],
    code: int,
    action: str,
    enabled: bool,
    rollout_after: int,
) -> None:
    """`rollout advance`: the decision's own exit code (never 1), the audit has it, one warning."""
    _gate_ready(env, ledger, orders, status)
    refuse_timeline(ledger)
    plan = ["--plan", "1,5,25,50,100", "--min-orders", "3", "--max-error-rate", "60%"]
    result = rollout("advance", *plan, "--no-evidence", "--actor", "gate-test", *args)
    assert result.exit_code == code, result.output
    assert REFUSAL in warned(result.stderr, "decision" if action.startswith("gate_") else "change")
    state = controller(env).show()
    assert (state.enabled, state.rollout) == (enabled, rollout_after)
    last = audited(env)[-1]
    assert (last["action"], last["actor"]) == (action, "gate-test")
    assert [event.kind for event in ledger.rollout_events()] == ["set"]


def test_a_watch_stops_after_a_decision_the_timeline_missed(
    env: Settings, ledger: SqlLedger
) -> None:
    """--watch stops after an unrecorded advance: the next window could not be found."""
    _gate_ready(env, ledger, 3, OrderStatus.FULFILLED)
    refuse_timeline(ledger)
    plan = ["--plan", "1,5,25,50,100", "--min-orders", "3", "--max-error-rate", "60%"]
    result = rollout("advance", *plan, "--no-evidence", "--watch", "600")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("gate: ") == 1
    assert "stopped watching" in result.stdout
    assert controller(env).show().rollout == 25


@dataclass
class Timeline:
    """A TimelineRecorder keeping events in memory; ``refuse`` makes writes fail."""

    events: list[RolloutChange] = field(default_factory=list)
    refuse: bool = False

    def record_rollout_event(self, event: RolloutChange) -> bool:
        if self.refuse:
            raise LedgerError("the ledger is down (fake)")
        self.events.append(event)
        return True


def test_the_rule_records_changes_and_gate_decisions_not_no_ops(settings: Settings) -> None:
    """A change and a gate hold go on the timeline; a command that changed nothing does not."""
    timeline = Timeline()
    recorder: TimelineRecorder = timeline
    control = FileRolloutController(settings.flags_file, settings.audit_log, timeline=recorder)
    control.set_percentage(10, actor="ana")
    control.set_percentage(10, actor="ana")
    control.note("hold", actor="gate", reason="not enough data")
    assert [(e.kind, e.changed) for e in timeline.events] == [
        ("set", True),
        ("gate_hold", False),
    ]
    assert [r["action"] for r in audited(settings)] == [
        "set_percentage",
        "set_percentage",
        "gate_hold",
    ]


def test_a_failed_write_is_returned_on_the_change_not_raised(settings: Settings) -> None:
    """The controller returns the made change with timeline_error; nothing is raised."""
    control = controller(settings)
    change = control.set_percentage(10, actor="ana")
    assert (change.timeline_recorded, change.timeline_warning()) == (True, None)
    failed = record_on_timeline(Timeline(refuse=True), change)
    assert (failed.timeline_recorded, failed.timeline_error) == (
        False,
        "LedgerError: the ledger is down (fake)",
    )
    assert (
        f"warning: {failed.timeline_warning()}"
        == f"{WARNING.format('change')}the ledger is down (fake)"
    )
    assert (failed.after, failed.at) == (change.after, change.at)
