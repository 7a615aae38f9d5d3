"""Per-step comparators: plain functions in a registry a user can extend.

A comparator takes the candidate's and the baseline's facts for one step and that step's
rules (ignored fields, tolerances), and returns the differences (none: a match). Register
one for your own step with :func:`register` or pass your own registry to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from strangler.compare.config import StepRules
from strangler.compare.records import OUTCOME_STEP, Difference, StepFacts

__all__ = [
    "DEFAULT_COMPARATORS",
    "Comparator",
    "authorize_payment",
    "differences",
    "fraud_scan",
    "fulfill",
    "outcome",
    "register",
]

Comparator = Callable[[StepFacts, StepFacts, StepRules], tuple[Difference, ...]]


def differences(
    candidate: StepFacts, baseline: StepFacts, names: Iterable[str], rules: StepRules
) -> tuple[Difference, ...]:
    """The fields in ``names`` that differ, skipping ignored ones and within tolerance."""
    found = []
    for name in names:
        if name in rules.ignored:
            continue
        left, right = candidate.value(name), baseline.value(name)
        if not _equal(left, right, rules.tolerances.get(name)):
            found.append(Difference(name, left, right))
    return tuple(found)


def fraud_scan(
    candidate: StepFacts, baseline: StepFacts, rules: StepRules
) -> tuple[Difference, ...]:
    """The fraud verdict, and the reason when it rejects."""
    return differences(candidate, baseline, ("decision", "reason"), rules)


def authorize_payment(
    candidate: StepFacts, baseline: StepFacts, rules: StepRules
) -> tuple[Difference, ...]:
    """The payment decision."""
    return differences(candidate, baseline, ("decision",), rules)


def fulfill(candidate: StepFacts, baseline: StepFacts, rules: StepRules) -> tuple[Difference, ...]:
    """The fulfilment decision and the voucher count (never the codes)."""
    return differences(candidate, baseline, ("decision", "voucher_count"), rules)


def outcome(candidate: StepFacts, baseline: StepFacts, rules: StepRules) -> tuple[Difference, ...]:
    """The final outcome (``fulfilled``, ``rejected_fraud``, ``payment_declined``)."""
    return differences(candidate, baseline, ("decision",), rules)


DEFAULT_COMPARATORS: Mapping[str, Comparator] = MappingProxyType(
    {
        "fraud_scan": fraud_scan,
        "authorize_payment": authorize_payment,
        "fulfill": fulfill,
        OUTCOME_STEP: outcome,
    }
)


def register(
    step: str, comparator: Comparator, base: Mapping[str, Comparator] = DEFAULT_COMPARATORS
) -> Mapping[str, Comparator]:
    """A new registry: ``base`` plus (or with a replaced) comparator for ``step``.

    Steps are compared in registry order; the outcome stays last.
    """
    entries = {name: fn for name, fn in base.items() if name not in (step, OUTCOME_STEP)}
    entries[step] = comparator
    if OUTCOME_STEP in base and step != OUTCOME_STEP:
        entries[OUTCOME_STEP] = base[OUTCOME_STEP]
    return MappingProxyType(entries)


def _equal(left: Any, right: Any, tolerance: float | None) -> bool:
    if tolerance is not None and _number(left) and _number(right):
        return bool(abs(left - right) <= tolerance)
    return bool(left == right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
