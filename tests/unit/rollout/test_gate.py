"""The gate's rounds on a real flag file and a real SQLite ledger: act, record, exit codes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from strangler.cli.main import main
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderStatus, Route
from strangler.report.verdict import Thresholds
from strangler.rollout.controller import FileRolloutController
from strangler.rollout.gate import GateRound, evaluate_gate, gate_round, window_start
from strangler.rollout.policy import Action, GatePolicy, RollbackTarget
from tests.helpers import REPO_ROOT
from tests.unit.ledger.support import make_decision, make_order
from tests.unit.routing.fakes import FakeLegacy

PLAN = (1, 5, 25, 50, 100)
# Few orders can pass a lenient error-rate check (0/3 has a Wilson upper bound of 56 %).
LENIENT = 0.6


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    """A copy of the shipped flag file."""
    path = tmp_path / "flags.json"
    shutil.copy(REPO_ROOT / "flags" / "city_orders_instant_processing.json", path)
    return path


@pytest.fixture
def controller(flags: Path, tmp_path: Path) -> FileRolloutController:
    """Embedded rollout control over the copy, auditing to tmp_path."""
    return FileRolloutController(flags, tmp_path / "rollout-audit.jsonl")


@pytest.fixture
def ledger(tmp_path: Path, controller: FileRolloutController) -> Iterator[SqlLedger]:
    """A SQLite ledger whose timeline starts with the rollout at 5 % (the current step)."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    change = controller.set_percentage(5, actor="ana", reason="step 5%")
    ledger.record_rollout_event(change)
    yield ledger
    ledger.close()


def _instant(ledger: SqlLedger, count: int, status: OrderStatus | None, prefix: str = "o") -> None:
    for n in range(count):
        order_id = f"{prefix}-{n}"
        ledger.record_received(make_order(order_id), source="test")
        ledger.pin_decision(order_id, make_decision(Route.INSTANT, rollout=5))
        if status is not None:
            ledger.transition(order_id, status)


def _round(
    controller: FileRolloutController,
    ledger: SqlLedger,
    min_orders: int = 3,
    *,
    dry_run: bool = False,
    **policy: object,
) -> GateRound:
    return gate_round(
        controller,
        ledger,
        GatePolicy(PLAN, min_orders=min_orders, **policy),  # type: ignore[arg-type]
        Thresholds(min_orders=min_orders, max_error_rate=LENIENT, require_shadow=False),
        actor="gate-test",
        dry_run=dry_run,
        legacy=FakeLegacy,
    )


def test_passing_step_advances_and_records_the_change(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """Every check passing on enough orders raises the flag one step, audited and timelined."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    done = _round(controller, ledger)
    assert (done.decision.action, controller.show().rollout) == (Action.ADVANCE, 25)
    events = ledger.rollout_events()
    assert (events[-1].from_rollout, events[-1].to_rollout) == (5, 25)
    assert events[-1].reason.startswith("rollout gate advance: every check passed on 3 orders")
    assert controller.audit.records()[-1]["action"] == "set_percentage"
    assert (events[-1].kind, events[-1].changed) == ("gate_advance", True)


def test_going_back_to_an_earlier_configuration_starts_a_new_window(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """50 % -> 60 % -> kill -> enable -> 50 %: the step starts at the last change, not the
    first 50 % (whose window held orders routed at 60 % and while killed)."""
    changes = [
        controller.set_percentage(50, actor="ana", reason="50"),
        controller.set_percentage(60, actor="ana", reason="60"),
        controller.kill(actor="ana", reason="incident"),
        controller.enable(actor="ana", reason="fixed"),
        controller.set_percentage(50, actor="ana", reason="back to 50"),
    ]
    for change in changes:
        ledger.record_rollout_event(change)
    assert changes[0].flag_revision == changes[-1].flag_revision
    assert window_start(ledger, controller.show()) == changes[-1].at
    kinds = [(e.kind, e.enabled) for e in ledger.rollout_events()[-5:]]
    assert kinds == [
        ("set", True),
        ("set", True),
        ("kill", False),
        ("enable", True),
        ("set", True),
    ]


def test_hold_is_recorded_without_restarting_the_window(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """A hold changes nothing, is audited and on the timeline, and keeps the window's start."""
    _instant(ledger, 2, OrderStatus.FULFILLED)
    since = window_start(ledger, controller.show())
    done = _round(controller, ledger, min_orders=10)
    assert (done.decision.action, controller.show().rollout) == (Action.HOLD, 5)
    assert ledger.rollout_events()[-1].reason.startswith("rollout gate hold: not enough data")
    assert controller.audit.records()[-1]["action"] == "gate_hold"
    assert window_start(ledger, controller.show()) == since


def test_failing_step_fails_and_leaves_the_rollout(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """Instant orders failing fail the error-rate check; without rollback the flag stays."""
    _instant(ledger, 20, OrderStatus.FAILED)
    done = _round(controller, ledger)
    assert (done.decision.action, done.decision.exit_code) == (Action.FAIL, 4)
    assert "error_rate" in done.decision.reason
    assert (controller.show().enabled, controller.show().rollout) == (True, 5)


def test_rollback_to_legacy_kills_and_hands_back_in_flight_orders(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """A failure with rollback kills the flag and hands unpaid in-flight orders back."""
    _instant(ledger, 20, OrderStatus.FAILED)
    _instant(ledger, 2, None, prefix="flying")
    done = _round(controller, ledger, rollback_on_fail=True)
    assert (done.decision.action, controller.show().enabled) == (Action.ROLL_BACK, False)
    assert done.hand_back is not None
    assert done.hand_back.moved == ("flying-0", "flying-1")
    story = ledger.story("flying-0")
    assert story is not None
    assert story["status"] == "fell_back"


def test_rollback_to_shadow_keeps_comparing(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """--rollback-to shadow leaves the flag on with the new side in shadow only."""
    _instant(ledger, 20, OrderStatus.FAILED)
    _round(controller, ledger, rollback_on_fail=True, rollback_to=RollbackTarget.SHADOW)
    state = controller.show()
    assert (state.enabled, state.rollout, state.variants["shadow"]) == (True, 5, 100)


def test_dry_run_changes_and_records_nothing(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """A dry run decides but leaves the flag, the audit log and the timeline alone."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    audited = len(controller.audit.records())
    done = _round(controller, ledger, dry_run=True)
    assert (done.decision.action, done.applied) == (Action.ADVANCE, False)
    assert (controller.show().rollout, len(ledger.rollout_events())) == (5, 1)
    assert len(controller.audit.records()) == audited


@pytest.mark.parametrize(
    ("orders", "status", "args", "code"),
    [
        (3, OrderStatus.FULFILLED, ["--min-orders", "3"], 0),
        (1, OrderStatus.FULFILLED, ["--min-orders", "3"], 3),
        (20, OrderStatus.FAILED, ["--min-orders", "3"], 4),
        (20, OrderStatus.FAILED, ["--min-orders", "3", "--rollback-on-fail"], 5),
        (3, OrderStatus.FULFILLED, ["--max-mismatch", "lots"], 2),
    ],
    ids=["advanced", "held", "failed", "rolled-back", "bad-input"],
)
def test_command_exit_codes(
    controller: FileRolloutController,
    ledger: SqlLedger,
    flags: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    orders: int,
    status: OrderStatus,
    args: list[str],
    code: int,
) -> None:
    """`strangler rollout advance` exits with the documented code for each outcome."""
    _instant(ledger, orders, status)
    monkeypatch.setenv("STRANGLER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRANGLER_FLAGS_FILE", str(flags))
    monkeypatch.setenv("STRANGLER_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    monkeypatch.setenv("STRANGLER_LEGACY_URL", "http://127.0.0.1:9")
    command = [
        *("rollout", "advance", "--plan", "1,5,25,50,100", "--max-error-rate", "60%"),
        "--no-evidence",
    ]
    result = CliRunner().invoke(main, [*command, *args])
    assert result.exit_code == code, result.output
    if code == 2:
        assert "--max-mismatch must be a rate" in result.output
    else:
        assert result.output.count("gate: ") == 1


def test_shadow_first_advances_the_instant_weight(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """At rollout 100 % with a shadow variant, a step moves users from shadow to instant."""
    for change in (
        controller.set_percentage(100, actor="ana", reason="all in"),
        controller.set_variants({"shadow": 100}, actor="ana", reason="shadow first"),
    ):
        ledger.record_rollout_event(change)
    for n in range(3):
        ledger.record_received(make_order(f"s-{n}"), source="test")
        ledger.pin_decision(f"s-{n}", make_decision(Route.SHADOW, rollout=100))
    done = _round(controller, ledger)
    state = controller.show()
    assert (done.decision.from_rollout, done.decision.to_rollout) == (0, 1)
    assert (state.rollout, state.variants["instant"], state.variants["shadow"]) == (100, 1, 99)


def test_a_gate_advance_that_goes_live_without_comparisons_is_recorded_as_such(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """advance --no-evidence from all-shadow to instant: the timeline says no evidence."""
    for change in (
        controller.set_percentage(100, actor="ana", reason="all in"),
        controller.set_variants({"shadow": 100}, actor="ana", reason="shadow first"),
    ):
        ledger.record_rollout_event(change)
    for n in range(3):
        ledger.record_received(make_order(f"s-{n}"), source="test")
        ledger.pin_decision(f"s-{n}", make_decision(Route.SHADOW, rollout=100))
    done = _round(controller, ledger)
    last = ledger.rollout_events()[-1]
    assert done.decision.action is Action.ADVANCE
    assert (last.kind, last.stage, last.no_evidence) == ("gate_advance", "live", True)
    assert controller.audit.records()[-1]["no_evidence"] is True


def test_no_comparisons_hold_by_default(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """Without --no-evidence, a live step with no compared shadow orders holds, saying why."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    done = gate_round(
        controller,
        ledger,
        GatePolicy(PLAN, min_orders=3),
        Thresholds(min_orders=3, max_error_rate=LENIENT),
        actor="gate-test",
    )
    assert (done.decision.action, controller.show().rollout) == (Action.HOLD, 5)
    assert "no comparisons yet: 0 of 765 compared orders needed per step" in done.decision.reason


def test_evaluate_gate_judges_without_acting(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """evaluate_gate says what a round would do and changes no flag, audit or timeline."""
    _instant(ledger, 20, OrderStatus.FAILED)
    audited, events = len(controller.audit.records()), len(ledger.rollout_events())
    policy = GatePolicy(PLAN, min_orders=3, rollback_on_fail=True)
    evaluation = evaluate_gate(controller, ledger, policy, Thresholds(min_orders=3))
    found = evaluation.to_json()
    assert (found["decision"]["action"], found["decision"]["exit_code"]) == ("roll_back", 5)
    assert (found["verdict"], found["comparison_passes"], found["step"]) == ("fail", False, 5)
    error_rate = next(c for c in found["checks"] if c["name"] == "error_rate")
    assert (error_rate["status"], error_rate["compared"]) == ("fail", 20)
    assert found["window"]["since"] == evaluation.since.isoformat()  # type: ignore[union-attr]
    assert (controller.show().enabled, controller.show().rollout) == (True, 5)
    assert (len(controller.audit.records()), len(ledger.rollout_events())) == (audited, events)


def test_a_verdict_that_cannot_be_computed_rolls_back(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """A ledger the report cannot read is a failure: with rollback the flag is killed."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE comparison_steps")
    done = _round(controller, ledger, rollback_on_fail=True)
    assert (done.decision.action, controller.show().enabled) == (Action.ROLL_BACK, False)
    assert done.report is None
    assert "the gate could not compute its verdict: LedgerError: ledger " in done.decision.reason
    assert "could not read the report: OperationalError" in done.decision.reason


@pytest.mark.parametrize(
    ("args", "code", "enabled"),
    [([], 4, True), (["--rollback-on-fail"], 5, False)],
    ids=["fails", "rolls-back"],
)
def test_a_ledger_that_cannot_be_opened_fails_safe(
    controller: FileRolloutController,
    flags: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    enabled: bool,
) -> None:
    """No ledger, no verdict: `rollout advance` fails (4) or rolls back (5), never crashes."""
    controller.set_percentage(50, actor="ana", reason="half")
    monkeypatch.setenv("STRANGLER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRANGLER_FLAGS_FILE", str(flags))
    monkeypatch.setenv(
        "STRANGLER_LEDGER_URL", "postgresql+psycopg://nobody:x@127.0.0.1:1/none?connect_timeout=2"
    )
    command = ["rollout", "advance", "--plan", "1,5,25,50,100", *args]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == code, result.output
    assert "the gate could not compute its verdict: the ledger could not be opened" in result.output
    assert controller.show().enabled is enabled


def _refuse_timeline(ledger: SqlLedger) -> None:
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_rollout_events BEFORE INSERT ON rollout_events "
            "BEGIN SELECT RAISE(ABORT, 'timeline refused by the test'); END"
        )


def test_a_step_missing_from_the_timeline_is_judged_from_when_the_gate_finds_it(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """5 % -> 25 % with the timeline write lost: the orders routed at 5 % must not promote
    25 %. The gate holds, starts the step on the timeline, and advances on fresh orders."""
    _instant(ledger, 3, OrderStatus.FULFILLED, prefix="at-5")
    _refuse_timeline(ledger)
    assert controller.set_percentage(25, actor="ana", reason="25").flag_revision
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_rollout_events")

    held = _round(controller, ledger)
    assert (held.decision.action, controller.show().rollout) == (Action.HOLD, 25)
    assert "is not on the rollout timeline" in held.decision.reason
    assert "not enough data: 0 orders" in held.decision.reason
    assert held.evaluation.unrecorded
    assert held.not_recorded is None
    observed = [e for e in ledger.rollout_events() if e.kind == "observed"]
    assert [(e.from_rollout, e.to_rollout, e.changed) for e in observed] == [(5, 25, True)]
    assert observed[0].flag_revision == controller.show().revision
    assert window_start(ledger, controller.show()) == observed[0].at == held.since

    _instant(ledger, 3, OrderStatus.FULFILLED, prefix="at-25")
    done = _round(controller, ledger)
    assert not done.evaluation.unrecorded
    assert (done.decision.action, controller.show().rollout) == (Action.ADVANCE, 50)


def test_a_dry_run_on_an_unrecorded_step_records_nothing(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """The dry run says what a round would do (hold, judged from now) and writes nothing."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    controller.set_percentage(25, actor="ana", reason="changed without the timeline")
    before = ledger.rollout_events()
    done = _round(controller, ledger, dry_run=True)
    assert (done.decision.action, done.evaluation.unrecorded) == (Action.HOLD, True)
    assert ledger.rollout_events() == before


def test_an_unrecorded_step_the_ledger_will_not_record_holds_and_says_so(
    controller: FileRolloutController, ledger: SqlLedger
) -> None:
    """The timeline refuses the gate's write too: every round holds, naming the error."""
    _instant(ledger, 3, OrderStatus.FULFILLED)
    _refuse_timeline(ledger)
    controller.set_percentage(25, actor="ana", reason="25")
    for _ in range(2):
        done = _round(controller, ledger)
        assert (done.decision.action, controller.show().rollout) == (Action.HOLD, 25)
        assert done.not_recorded is not None
        assert "timeline refused by the test" in done.not_recorded
