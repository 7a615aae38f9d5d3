"""Turn the ledger's step records into comparison sides (pure; no IO).

A step may have been tried more than once (a batch job retries after an error): the side
keeps its last try that reached a decision, or its last try when none did. Besides the
decision it keeps the fields the comparators look at: ``reason`` (a reject or decline)
and ``voucher_count`` (from a count, or from the list of codes, which is not kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from strangler.compare.records import OUTCOME_STEP, Side, StepFacts
from strangler.orders import StepResult

__all__ = ["COMPARED_STEPS", "PLUMBING_STEPS", "outcome_from_steps", "side_from_steps"]

# The built-in business steps, in order.
COMPARED_STEPS = ("fraud_scan", "authorize_payment", "fulfill")
# The instant path's plumbing: who holds the order, not a business decision.
PLUMBING_STEPS = frozenset({"claim", "release"})
_STOPS = {"reject": "rejected_fraud", "declined": "payment_declined", "fulfilled": "fulfilled"}


def side_from_steps(steps: Iterable[StepResult], outcome: str | None) -> Side:
    """A side from one path's step records (the caller picks them) and its outcome.

    Every step but the plumbing (claim, release) is kept, a user's own steps included,
    so that a comparator registered for them finds them.
    """
    chosen: dict[str, StepResult] = {}
    for step in steps:
        if step.step in PLUMBING_STEPS:
            continue
        kept = chosen.get(step.step)
        if kept is None or step.decision is not None or kept.decision is None:
            chosen[step.step] = step
    facts = {name: _facts(step) for name, step in chosen.items()}
    if outcome is not None:
        facts[OUTCOME_STEP] = StepFacts(decision=outcome)
    return Side(steps=MappingProxyType(facts))


def outcome_from_steps(steps: Iterable[StepResult]) -> str | None:
    """The outcome a run of the three steps reached, None when it stopped undecided."""
    reached = None
    for step in steps:
        if step.step in COMPARED_STEPS and step.decision in _STOPS:
            reached = _STOPS[step.decision]
    return reached


def _facts(step: StepResult) -> StepFacts:
    fields: dict[str, Any] = {}
    details = step.payload.get("details")
    details = details if isinstance(details, Mapping) else {}
    reason = step.payload.get("reason", details.get("reason"))
    if isinstance(reason, str):
        fields["reason"] = reason
    count = step.payload.get("voucher_count")
    vouchers = details.get("vouchers")
    if isinstance(count, int) and not isinstance(count, bool):
        fields["voucher_count"] = count
    elif isinstance(vouchers, list):
        fields["voucher_count"] = len(vouchers)
    return StepFacts(decision=step.decision, fields=MappingProxyType(fields), error=step.error)
