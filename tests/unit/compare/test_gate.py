"""The rollout gate's pure decision: one test per branch and per exit code."""

from __future__ import annotations

import pytest

from strangler.compare.gate import (
    Action,
    Evidence,
    GatePolicy,
    RollbackTarget,
    decide,
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
