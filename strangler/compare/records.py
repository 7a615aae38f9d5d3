"""The records a comparison passes around: sides, step verdicts and the Comparison itself.

Pure data; no IO. What a side holds per step is what the comparators look at (decisions,
reasons, voucher counts), never voucher codes or payment data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "OUTCOME_STEP",
    "Comparison",
    "ComparisonKind",
    "Difference",
    "NotComparedReason",
    "Side",
    "StepFacts",
    "StepVerdict",
]

# The final outcome is compared as a step of this name.
OUTCOME_STEP = "outcome"


class ComparisonKind(enum.StrEnum):
    """What is compared with the batch jobs: the instant dry run, or legacy's own API."""

    SHADOW = "shadow"
    NOISE = "noise"


class NotComparedReason(enum.StrEnum):
    """Why an order's comparison cannot run (the reports print these codes)."""

    DRY_RUN_FAILED = "dry_run_failed"
    LEGACY_FAILED = "legacy_failed"
    LEGACY_NOT_TERMINAL = "legacy_not_terminal"
    HANDED_OFF = "handed_off"
    DRY_RUN_MISSING = "dry_run_missing"


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What one side did at one step: its decision and the fields compared beside it.

    ``fields`` holds e.g. ``{"reason": "fraud_token"}`` or ``{"voucher_count": 2}``.
    """

    decision: str | None
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    error: str | None = None

    def value(self, name: str) -> Any:
        """The value of field ``name`` (``decision`` included); None when absent."""
        return self.decision if name == "decision" else self.fields.get(name)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as stored in the comparisons table."""
        data: dict[str, Any] = {"decision": self.decision, **self.fields}
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: per-step facts, the outcome included as step ``outcome``."""

    steps: Mapping[str, StepFacts] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def outcome(self) -> str | None:
        """The side's final outcome, None when not known."""
        facts = self.steps.get(OUTCOME_STEP)
        return facts.decision if facts is not None else None

    def to_json(self) -> dict[str, Any]:
        """``{"outcome": ..., "steps": {step: {decision, ...}}}`` (outcome not repeated)."""
        return {
            "outcome": self.outcome,
            "steps": {
                name: facts.to_json() for name, facts in self.steps.items() if name != OUTCOME_STEP
            },
        }


@dataclass(frozen=True, slots=True)
class Difference:
    """One field that differs between the sides at one step."""

    field: str
    candidate: Any
    baseline: Any

    def describe(self) -> str:
        """``"decision: 'reject' != 'pass'"`` (candidate first)."""
        return f"{self.field}: {self.candidate!r} != {self.baseline!r}"


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """A step's verdict: a match, or a mismatch with the fields that differ."""

    step: str
    differences: tuple[Difference, ...] = ()

    @property
    def match(self) -> bool:
        """True when no compared field differs."""
        return not self.differences

    @property
    def verdict(self) -> str:
        """``match`` or ``mismatch``, as stored."""
        return "match" if self.match else "mismatch"

    @property
    def detail(self) -> str | None:
        """Which fields differ, ``; ``-separated; None on a match."""
        return "; ".join(d.describe() for d in self.differences) or None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The stored result for one order and kind: compared (with verdicts) or not, and why.

    ``candidate`` is the instant dry run (kind shadow) or legacy's API dry run (noise);
    ``baseline`` is what the batch jobs did. ``reason`` is set only when not compared.
    """

    order_id: str
    kind: ComparisonKind
    candidate: Side
    baseline: Side
    routed_at: datetime
    compared_at: datetime
    steps: tuple[StepVerdict, ...] = ()
    reason: NotComparedReason | None = None

    @property
    def compared(self) -> bool:
        """True when the sides were compared (False: see ``reason``)."""
        return self.reason is None

    @property
    def status(self) -> str:
        """``compared`` or ``not_compared``, as stored."""
        return "compared" if self.compared else "not_compared"

    @property
    def mismatch(self) -> bool | None:
        """Any step mismatched; None when not compared."""
        if not self.compared:
            return None
        return any(not step.match for step in self.steps)
