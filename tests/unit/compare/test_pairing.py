"""When a comparison runs, waits, or is given up with its reason (the pure pairing rules)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from strangler.compare.config import CompareConfig
from strangler.compare.pairing import OrderRecord, kinds_of, plan
from strangler.compare.records import ComparisonKind
from strangler.orders import Route
from tests.unit.compare.support import T0, batch_steps, dry_run_steps, record, step

CONFIG = CompareConfig(max_age_s=3600)
SOON = T0 + timedelta(seconds=60)
LATE = T0 + timedelta(seconds=3600)


def _reason(order: OrderRecord, now: datetime = SOON) -> str | None:
    result = plan(order, ComparisonKind.SHADOW, now=now, config=CONFIG)
    assert result is not None
    return result.reason.value if result.reason else result.status


def test_the_dry_run_alone_waits_for_legacy() -> None:
    """With only the dry run recorded, nothing is stored: legacy's side may still come."""
    order = record(steps=dry_run_steps(), dry_run_outcome="fulfilled", settled=True)
    assert plan(order, ComparisonKind.SHADOW, now=SOON, config=CONFIG) is None


def test_legacy_alone_waits_for_the_dry_run() -> None:
    """With only legacy's side (the dry run still retrying), nothing is stored yet."""
    order = record(steps=batch_steps(), legacy_status="fulfilled")
    assert plan(order, ComparisonKind.SHADOW, now=SOON, config=CONFIG) is None


def test_both_sides_are_compared() -> None:
    """Once both sides are known the comparison is made, timed now, routed_at kept."""
    order = record(
        steps=dry_run_steps() + batch_steps(),
        dry_run_outcome="fulfilled",
        settled=True,
        legacy_status="fulfilled",
    )
    result = plan(order, ComparisonKind.SHADOW, now=SOON, config=CONFIG)
    assert result is not None
    assert (result.status, result.mismatch, result.routed_at, result.compared_at) == (
        "compared",
        False,
        T0,
        SOON,
    )


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (record(steps=batch_steps(), legacy_status="fulfilled"), "dry_run_missing"),
        (
            record(steps=dry_run_steps(), dry_run_outcome="fulfilled", settled=True),
            "legacy_not_terminal",
        ),
        (record(), "legacy_not_terminal"),
    ],
    ids=["dry-run-missing", "legacy-not-terminal", "neither"],
)
def test_one_side_missing_past_the_age_limit(order: OrderRecord, expected: str) -> None:
    """An order still missing a side at the age limit is given up, with the missing side."""
    assert (
        plan(order, ComparisonKind.SHADOW, now=LATE - timedelta(seconds=1), config=CONFIG) is None
    )
    assert expected == _reason(order, LATE)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (record(settled=True, legacy_status="fulfilled"), "dry_run_failed"),
        (record(dry_run_outcome="fell_back", settled=True), "dry_run_failed"),
        (
            record(
                steps=dry_run_steps(),
                dry_run_outcome="fulfilled",
                settled=True,
                legacy_status="failed",
            ),
            "legacy_failed",
        ),
        (record(handoff="fallback", legacy_status="fulfilled"), "handed_off"),
    ],
    ids=["gave-up", "fell-back", "legacy-failed", "handed-off"],
)
def test_reasons_known_at_once(order: OrderRecord, expected: str) -> None:
    """A failed dry run, a failed legacy order or a hand-off is given up without waiting."""
    assert expected == _reason(order)


def test_noise_is_never_paired_with_the_batch_jobs() -> None:
    """A probed legacy order is not the comparer's: noise is the same side judged twice."""
    api = [
        step(s.step, s.decision, path=Route.LEGACY, dry_run=True, **dict(s.payload))
        for s in dry_run_steps(fraud="reject", reason="blocked_user")
        if s.step != "claim"
    ]
    order = record(path="legacy", steps=api + batch_steps(), legacy_status="fulfilled")
    assert kinds_of(order) == ()
    with pytest.raises(ValueError, match="noise is strangler\\.background\\.noise's"):
        plan(order, ComparisonKind.NOISE, now=SOON, config=CONFIG)


def test_an_unsampled_legacy_order_takes_part_in_nothing() -> None:
    """A legacy order without API dry-run steps has no comparison to make."""
    assert kinds_of(record(path="legacy", steps=batch_steps(), legacy_status="fulfilled")) == ()
