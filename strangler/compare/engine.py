"""The comparison engine: two sides in, one Comparison record out (pure; no IO).

Each step of the registry is compared when both sides ran it. A step only one side ran
is not a mismatch of that step: it follows from an earlier step that decided differently
(a fraud reject stops the run), which that step's verdict and the outcome already show.
Both sides stay in the record as they were, so the report can show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from strangler.compare.comparators import DEFAULT_COMPARATORS, Comparator
from strangler.compare.config import CompareConfig
from strangler.compare.records import (
    Comparison,
    ComparisonKind,
    NotComparedReason,
    Side,
    StepVerdict,
)

__all__ = ["compare", "not_compared"]


def compare(
    order_id: str,
    kind: ComparisonKind,
    candidate: Side,
    baseline: Side,
    *,
    routed_at: datetime,
    compared_at: datetime,
    config: CompareConfig | None = None,
    comparators: Mapping[str, Comparator] = DEFAULT_COMPARATORS,
) -> Comparison:
    """Compare the two sides step by step (registry order) under ``config``'s rules."""
    config = config or CompareConfig()
    verdicts = []
    for step, comparator in comparators.items():
        left, right = candidate.steps.get(step), baseline.steps.get(step)
        if left is None or right is None or config.skips(step):
            continue
        verdicts.append(StepVerdict(step, comparator(left, right, config.rules_for(step))))
    return Comparison(
        order_id=order_id,
        kind=kind,
        candidate=candidate,
        baseline=baseline,
        routed_at=routed_at,
        compared_at=compared_at,
        steps=tuple(verdicts),
    )


def not_compared(
    order_id: str,
    kind: ComparisonKind,
    reason: NotComparedReason,
    *,
    routed_at: datetime,
    compared_at: datetime,
    candidate: Side | None = None,
    baseline: Side | None = None,
) -> Comparison:
    """The record of an order whose comparison cannot run, with what each side had."""
    return Comparison(
        order_id=order_id,
        kind=kind,
        candidate=candidate or Side(),
        baseline=baseline or Side(),
        routed_at=routed_at,
        compared_at=compared_at,
        reason=reason,
    )
