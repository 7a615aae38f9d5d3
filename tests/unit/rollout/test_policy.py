"""The rollout gate's pure decision: one test per branch and per exit code."""

from __future__ import annotations

import pytest

from strangler.rollout.policy import (
    Action,
    Evidence,
    GatePolicy,
    RollbackTarget,
    decide,
    fail_safe,
    parse_hold_budget,
    parse_plan,
)

PLAN = (1, 5, 25, 50, 100)


def _evidence(verdict: str, orders: int = 500, *reasons: str) -> Evidence:
    return Evidence(verdict=verdict, reasons=reasons, orders=orders)


def test_pass_on_enough_orders_advances_one_step_with_exit_0() -> None:
    """A passing verdict on enough orders moves to the next plan step and exits 0."""
    decision = decide(GatePolicy(PLAN), enabled=True, rollout=5, evidence=_evidence("pass"))
    assert (
        decision.action,
        decision.from_rollout,
        decision.to_rollout,
        decision.exit_code,
    ) == (Action.ADVANCE, 5, 25, 0)


def test_rollout_between_steps_advances_to_the_next_step_above() -> None:
    """A rollout set by hand between plan steps advances to the first step above it."""
    decision = decide(GatePolicy(PLAN), enabled=True, rollout=7, evidence=_evidence("pass"))
    assert decision.to_rollout == 25


def test_too_few_orders_hold_with_exit_3() -> None:
    """Fewer orders than --min-orders hold, even when every check passes."""
    policy = GatePolicy(PLAN, min_orders=400)
    decision = decide(policy, enabled=True, rollout=5, evidence=_evidence("pass", 399))
    assert (decision.action, decision.to_rollout, decision.exit_code) == (Action.HOLD, 5, 3)
    assert "not enough data: 399 orders" in decision.reason


def test_inconclusive_verdict_holds_and_says_why() -> None:
    """A hold verdict (an interval straddling a threshold) holds with the verdict's reason."""
    evidence = _evidence("hold", 500, "fraud_scan mismatch interval straddles 0.5%")
    decision = decide(GatePolicy(PLAN), enabled=True, rollout=5, evidence=evidence)
    assert decision.action == Action.HOLD
    assert decision.reason == "inconclusive: fraud_scan mismatch interval straddles 0.5%"


def test_failed_check_fails_with_exit_4_and_changes_nothing() -> None:
    """A failing check without --rollback-on-fail fails (exit 4) and keeps the rollout."""
    evidence = _evidence("fail", 500, "fraud_scan mismatch 5.0% > 0.5%")
    decision = decide(GatePolicy(PLAN), enabled=True, rollout=25, evidence=evidence)
    assert (decision.action, decision.to_rollout, decision.exit_code) == (Action.FAIL, 25, 4)
    assert "fraud_scan mismatch 5.0% > 0.5%" in decision.reason


@pytest.mark.parametrize("target", list(RollbackTarget), ids=str)
def test_failed_check_rolls_back_with_exit_5(target: RollbackTarget) -> None:
    """With --rollback-on-fail a failing check rolls back to the chosen target (exit 5)."""
    policy = GatePolicy(PLAN, rollback_on_fail=True, rollback_to=target)
    decision = decide(policy, enabled=True, rollout=25, evidence=_evidence("fail", 10))
    assert (Action.ROLL_BACK, target, 5) == (
        decision.action,
        decision.rollback_to,
        decision.exit_code,
    )


def test_last_step_holds() -> None:
    """At the plan's last step there is nothing to advance to."""
    decision = decide(GatePolicy(PLAN), enabled=True, rollout=100, evidence=_evidence("pass"))
    assert (decision.action, decision.to_rollout) == (Action.HOLD, 100)
    assert "last step" in decision.reason


def test_killed_flag_holds() -> None:
    """A killed flag is not advanced: someone must enable it first."""
    decision = decide(GatePolicy(PLAN), enabled=False, rollout=5, evidence=_evidence("pass"))
    assert (
        decision.action,
        decision.reason,
    ) == (Action.HOLD, "the flag is killed; enable it before gating")


def test_parse_plan_reads_percentages() -> None:
    """A plan is comma-separated percentages; a % suffix is allowed."""
    assert parse_plan("1, 5%,25,50,100") == (1, 5, 25, 50, 100)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,five", "comma-separated whole percentages"),
        ("5,1", "ascending distinct"),
        ("1,1,5", "ascending distinct"),
        ("0,50", "1..100"),
        ("50,101", "1..100"),
        ("", "ascending distinct"),
    ],
    ids=["not-a-number", "descending", "repeated", "zero", "over-100", "empty"],
)
def test_bad_plan_is_refused_with_a_clear_message(text: str, message: str) -> None:
    """A malformed plan raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        parse_plan(text)


def test_unknown_verdict_is_refused() -> None:
    """Evidence with a verdict other than pass, hold or fail is refused."""
    with pytest.raises(ValueError, match="verdict must be one of"):
        Evidence(verdict="ok", reasons=(), orders=1)


@pytest.mark.parametrize(
    ("evidence", "policy"),
    [
        (Evidence("hold", ("mismatch: straddles",), orders=12_000), GatePolicy(PLAN)),
        (Evidence("hold", (), orders=500, age_s=90_000), GatePolicy(PLAN)),
        (Evidence("pass", (), orders=30, age_s=600), GatePolicy(PLAN, max_hold_s=300)),
    ],
    ids=["orders", "time", "time-short-of-data"],
)
def test_a_hold_past_its_budget_fails(evidence: Evidence, policy: GatePolicy) -> None:
    """A hold waiting for evidence beyond --max-hold (orders or time) is a failure, exit 4."""
    decision = decide(policy, enabled=True, rollout=5, evidence=evidence)
    assert (decision.action, decision.exit_code) == (Action.FAIL, 4)
    assert decision.reason.startswith("held past the budget (")


def test_a_hold_past_its_budget_rolls_back_when_asked() -> None:
    """With rollback on failure, an exhausted hold budget rolls back, so a watch always ends."""
    policy = GatePolicy(PLAN, rollback_on_fail=True, max_hold_orders=1000)
    decision = decide(policy, enabled=True, rollout=50, evidence=_evidence("hold", 1000))
    assert (decision.action, decision.rollback_to) == (Action.ROLL_BACK, RollbackTarget.LEGACY)


def test_holds_that_wait_for_nothing_have_no_budget() -> None:
    """The plan's last step and a killed flag hold whatever the budget."""
    policy = GatePolicy(PLAN, max_hold_orders=10)
    last = decide(policy, enabled=True, rollout=100, evidence=_evidence("pass", 500))
    killed = decide(policy, enabled=False, rollout=5, evidence=_evidence("hold", 500))
    assert (last.action, killed.action) == (Action.HOLD, Action.HOLD)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((), (10_000, 86400.0)),
        (("2000",), (2000, 86400.0)),
        (("30m",), (10_000, 1800.0)),
        (("100", "1.5h"), (100, 5400.0)),
        (("none",), (None, None)),
    ],
    ids=["default", "orders", "minutes", "both", "none"],
)
def test_parse_hold_budget(
    values: tuple[str, ...], expected: tuple[int | None, float | None]
) -> None:
    """--max-hold takes orders, a time with a unit, or none; unset kinds keep the default."""
    assert parse_hold_budget(values) == expected


def test_bad_hold_budget_is_refused_naming_the_option() -> None:
    """A --max-hold that is neither orders nor a time is a ValueError naming the option."""
    with pytest.raises(ValueError, match="--max-hold must be a number of orders"):
        parse_hold_budget(("soon",))


@pytest.mark.parametrize(
    ("rollback", "action"),
    [(False, Action.FAIL), (True, Action.ROLL_BACK)],
    ids=["fail", "roll-back"],
)
def test_a_verdict_that_cannot_be_computed_fails_safe(rollback: bool, action: Action) -> None:
    """An unknown verdict is a failure (a rollback when asked), never a pass or a hold."""
    policy = GatePolicy(PLAN, rollback_on_fail=rollback)
    decision = fail_safe(policy, enabled=True, rollout=100, cause="ValueError: boom")
    assert decision.action is action
    assert "the gate could not compute its verdict: ValueError: boom" in decision.reason
