"""When an order's shadow comparison can run, and when it is given up (pure; no IO).

A comparison runs when its second side arrives, whichever comes first: the candidate (the
instant dry run) or the baseline (the batch jobs' steps, known once legacy reports the
order terminal). Noise comparisons (the same side judged twice) are made by
:mod:`strangler.background.noise`, which reads the first run with
:meth:`OrderRecord.candidate_steps`. :func:`plan` looks at what the ledger has for one
order and returns the Comparison to store now, or None to wait. The rules, in order:

1. the order was handed off: not compared, ``handed_off``;
2. the candidate's dry run failed or gave up: ``dry_run_failed``;
3. legacy ended the order ``failed``: ``legacy_failed``;
4. both sides known: compared;
5. older than ``max_age_s`` since routing: ``legacy_not_terminal`` when legacy has not
   finished, else ``dry_run_missing``;
6. otherwise wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from strangler.compare.comparators import DEFAULT_COMPARATORS, Comparator
from strangler.compare.config import CompareConfig
from strangler.compare.engine import compare, not_compared
from strangler.compare.records import Comparison, ComparisonKind, NotComparedReason, Side
from strangler.compare.sides import side_from_steps
from strangler.orders import Route, StepResult

__all__ = ["BUSINESS_OUTCOMES", "LEGACY_TERMINAL", "OrderRecord", "kinds_of", "plan"]

BUSINESS_OUTCOMES = frozenset({"fulfilled", "rejected_fraud", "payment_declined"})
LEGACY_TERMINAL = BUSINESS_OUTCOMES | {"failed"}


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the ledger has about one order, as far as comparing it goes.

    ``dry_run_settled``: the dispatcher is done with the order (its shadow dry run was
    recorded or given up). ``steps``: every step record of the order, any path.
    """

    order_id: str
    path: str | None
    routed_at: datetime | None
    handoff: str | None
    dry_run_settled: bool
    dry_run_outcome: str | None
    legacy_status: str | None
    steps: tuple[StepResult, ...]

    def candidate_steps(self, kind: ComparisonKind) -> tuple[StepResult, ...]:
        """The dry-run steps: the instant path's (shadow) or the noise probe's first run."""
        path = Route.INSTANT if kind is ComparisonKind.SHADOW else Route.LEGACY
        return tuple(s for s in self.steps if s.dry_run and s.path is path)

    def batch_steps(self) -> tuple[StepResult, ...]:
        """The batch jobs' steps, as the follower recorded them."""
        return tuple(s for s in self.steps if not s.dry_run and s.path is Route.LEGACY)


def kinds_of(record: OrderRecord) -> tuple[ComparisonKind, ...]:
    """The comparisons the comparer makes for this order: shadow orders only."""
    if record.path == Route.SHADOW.value:
        return (ComparisonKind.SHADOW,)
    return ()


def plan(
    record: OrderRecord,
    kind: ComparisonKind,
    *,
    now: datetime,
    config: CompareConfig,
    comparators: Mapping[str, Comparator] = DEFAULT_COMPARATORS,
) -> Comparison | None:
    """The Comparison to store for ``record`` now, or None while a side may still arrive.

    Raises ValueError for kind ``noise``, which :mod:`strangler.background.noise` compares.
    """
    if kind is not ComparisonKind.SHADOW:
        raise ValueError(
            f"plan compares shadow orders; {kind.value} is strangler.background.noise's"
        )
    if record.routed_at is None:
        return None
    candidate, candidate_failed = _candidate(record, kind)
    baseline = _baseline(record)
    reason = _reason(record, candidate_failed)
    if reason is None and (candidate is None or baseline is None):
        if now - record.routed_at < timedelta(seconds=config.max_age_s):
            return None
        reason = (
            NotComparedReason.LEGACY_NOT_TERMINAL
            if baseline is None
            else NotComparedReason.DRY_RUN_MISSING
        )
    if reason is not None:
        return not_compared(
            record.order_id,
            kind,
            reason,
            routed_at=record.routed_at,
            compared_at=now,
            candidate=candidate,
            baseline=baseline,
        )
    assert candidate is not None
    assert baseline is not None
    return compare(
        record.order_id,
        kind,
        candidate,
        baseline,
        routed_at=record.routed_at,
        compared_at=now,
        config=config,
        comparators=comparators,
    )


def _reason(record: OrderRecord, candidate_failed: bool) -> NotComparedReason | None:
    """A reason known whatever the sides (rules 1 to 3), or None."""
    if record.handoff is not None:
        return NotComparedReason.HANDED_OFF
    if candidate_failed:
        return NotComparedReason.DRY_RUN_FAILED
    if record.legacy_status == "failed":
        return NotComparedReason.LEGACY_FAILED
    return None


def _candidate(record: OrderRecord, kind: ComparisonKind) -> tuple[Side | None, bool]:
    """(the candidate side or None while unknown, whether its dry run failed)."""
    steps = record.candidate_steps(kind)
    outcome = record.dry_run_outcome
    if outcome in BUSINESS_OUTCOMES:
        return side_from_steps(steps, outcome), False
    failed = outcome is not None or record.dry_run_settled
    return (side_from_steps(steps, outcome) if failed else None), failed


def _baseline(record: OrderRecord) -> Side | None:
    """The batch jobs' side, once legacy reports the order terminal."""
    if record.legacy_status not in BUSINESS_OUTCOMES:
        return None
    return side_from_steps(record.batch_steps(), record.legacy_status)
