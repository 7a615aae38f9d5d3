"""The comparison engine and its comparators: per-step verdicts from two sides."""

from __future__ import annotations

import dataclasses

import pytest

from strangler.compare.comparators import differences, register
from strangler.compare.config import CompareConfig, StepRules
from strangler.compare.engine import compare
from strangler.compare.records import Comparison, ComparisonKind, Difference, Side, StepFacts
from strangler.compare.sides import side_from_steps
from strangler.orders import StepResult
from tests.unit.compare.support import T0, batch_steps, dry_run_steps, step


def _compare(
    candidate_steps: list[StepResult],
    candidate_outcome: str,
    baseline_steps: list[StepResult],
    baseline_outcome: str,
    config: CompareConfig | None = None,
) -> Comparison:
    return compare(
        "o-1",
        ComparisonKind.SHADOW,
        side_from_steps(candidate_steps, candidate_outcome),
        side_from_steps(baseline_steps, baseline_outcome),
        routed_at=T0,
        compared_at=T0,
        config=config,
    )


def _verdicts(comparison: Comparison) -> dict[str, str]:
    return {v.step: v.verdict for v in comparison.steps}


def test_equal_sides_match_on_every_step() -> None:
    """The same decisions on both sides give a match on each step and no mismatch."""
    result = _compare(dry_run_steps(), "fulfilled", batch_steps(), "fulfilled")
    expected = dict.fromkeys(("fraud_scan", "authorize_payment", "fulfill", "outcome"), "match")
    assert expected == _verdicts(result)
    assert (result.status, result.mismatch, result.reason) == ("compared", False, None)


def test_a_fraud_verdict_mismatch_shows_on_fraud_and_outcome_only() -> None:
    """A flipped fraud verdict is a fraud_scan and outcome mismatch; the steps after it are
    not compared, because only one side ran them."""
    result = _compare(
        dry_run_steps(fraud="reject", reason="fraud_token"),
        "rejected_fraud",
        batch_steps(),
        "fulfilled",
    )
    assert _verdicts(result) == {"fraud_scan": "mismatch", "outcome": "mismatch"}
    assert result.mismatch is True
    details = {v.step: v.detail for v in result.steps}
    assert details["fraud_scan"] == "decision: 'reject' != 'pass'; reason: 'fraud_token' != None"
    assert details["outcome"] == "decision: 'rejected_fraud' != 'fulfilled'"


def test_a_fraud_reason_mismatch_is_a_fraud_scan_mismatch() -> None:
    """Both reject, for different reasons: the fraud step mismatches on its reason only."""
    result = _compare(
        dry_run_steps(fraud="reject", reason="fraud_token"),
        "rejected_fraud",
        batch_steps(fraud="reject", reason="blocked_user"),
        "rejected_fraud",
    )
    assert _verdicts(result) == {"fraud_scan": "mismatch", "outcome": "match"}


def test_a_payment_decision_mismatch() -> None:
    """A different payment decision is an authorize_payment (and outcome) mismatch."""
    candidate = [
        *dry_run_steps()[:2],
        step("authorize_payment", "declined", details={"reason": "card_declined"}),
    ]
    result = _compare(candidate, "payment_declined", batch_steps(), "fulfilled")
    assert _verdicts(result) == {
        "fraud_scan": "match",
        "authorize_payment": "mismatch",
        "outcome": "mismatch",
    }


def test_a_voucher_count_mismatch() -> None:
    """Two vouchers against one is a fulfil mismatch on the count, the codes never compared."""
    result = _compare(dry_run_steps(vouchers=2), "fulfilled", batch_steps(vouchers=1), "fulfilled")
    assert _verdicts(result)["fulfill"] == "mismatch"
    assert {v.step: v.detail for v in result.steps}["fulfill"] == "voucher_count: 2 != 1"
    assert "GC-0" not in str(result.candidate.to_json())


def test_an_ignored_field_is_not_compared() -> None:
    """With fraud_scan.reason ignored, a different reason alone is a match."""
    config = CompareConfig(ignore=frozenset({"fraud_scan.reason"}))
    result = _compare(
        dry_run_steps(fraud="reject", reason="fraud_token"),
        "rejected_fraud",
        batch_steps(fraud="reject", reason="blocked_user"),
        "rejected_fraud",
        config,
    )
    assert _verdicts(result)["fraud_scan"] == "match"


def test_an_ignored_step_is_left_out() -> None:
    """With the whole fulfil step ignored, it gets no verdict at all."""
    config = CompareConfig(ignore=frozenset({"fulfill"}))
    result = _compare(dry_run_steps(vouchers=3), "fulfilled", batch_steps(), "fulfilled", config)
    assert "fulfill" not in _verdicts(result)
    assert result.mismatch is False


@pytest.mark.parametrize(
    ("vouchers", "expected"), [(2, "match"), (3, "mismatch")], ids=["within", "beyond"]
)
def test_a_numeric_tolerance(vouchers: int, expected: str) -> None:
    """A voucher count within the configured tolerance matches; beyond it, it does not."""
    config = CompareConfig(tolerances={"fulfill.voucher_count": 1.0})
    result = _compare(
        dry_run_steps(vouchers=vouchers), "fulfilled", batch_steps(), "fulfilled", config
    )
    assert expected == _verdicts(result)["fulfill"]


def test_a_tolerance_never_applies_to_text() -> None:
    """A tolerance on a field whose values are not numbers compares them exactly."""
    rules = StepRules(tolerances={"decision": 5.0})
    found = differences(StepFacts("pass"), StepFacts("reject"), ("decision",), rules)
    assert (Difference("decision", "pass", "reject"),) == found


def test_a_user_comparator_can_be_registered() -> None:
    """A comparator registered for a new step is used, and the outcome stays last."""

    def gift_wrap(
        candidate: StepFacts, baseline: StepFacts, rules: StepRules
    ) -> tuple[Difference, ...]:
        return differences(candidate, baseline, ("decision",), rules)

    registry = register("gift_wrap", gift_wrap)
    assert list(registry)[-2:] == ["gift_wrap", "outcome"]
    side = side_from_steps([], "fulfilled")
    wrapped = side.steps | {"gift_wrap": StepFacts("wrapped")}
    plain = side.steps | {"gift_wrap": StepFacts("plain")}
    result = compare(
        "o-1",
        ComparisonKind.SHADOW,
        Side(wrapped),
        Side(plain),
        routed_at=T0,
        compared_at=T0,
        comparators=registry,
    )
    assert _verdicts(result) == {"gift_wrap": "mismatch", "outcome": "match"}


def test_a_retried_batch_step_counts_its_decided_try() -> None:
    """A batch step that errored once and then decided is compared by its decision."""
    legacy = batch_steps()
    retried = [
        step("fraud_scan", None, path=legacy[0].path, dry_run=False, error="GatewayError"),
        *legacy,
    ]
    result = _compare(dry_run_steps(), "fulfilled", retried, "fulfilled")
    assert result.mismatch is False


def test_a_users_own_step_reaches_its_comparator_from_the_records() -> None:
    """A step the registry does not know by default is kept in the sides built from records,
    while the claim (plumbing) is left out."""

    def gift_wrap(
        candidate: StepFacts, baseline: StepFacts, rules: StepRules
    ) -> tuple[Difference, ...]:
        return differences(candidate, baseline, ("decision",), rules)

    candidate = side_from_steps([*dry_run_steps(), step("gift_wrap", "wrapped")], "fulfilled")
    assert "claim" not in candidate.steps
    legacy = batch_steps()
    baseline_steps = [*legacy, dataclasses.replace(legacy[0], step="gift_wrap", decision="plain")]
    result = compare(
        "o-1",
        ComparisonKind.SHADOW,
        candidate,
        side_from_steps(baseline_steps, "fulfilled"),
        routed_at=T0,
        compared_at=T0,
        comparators=register("gift_wrap", gift_wrap),
    )
    assert _verdicts(result)["gift_wrap"] == "mismatch"
