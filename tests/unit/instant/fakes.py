"""A hand-written fake of the legacy adapter, as the pipeline's handlers see it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from strangler.legacy_adapter import StepOutcome

_DECISIONS = {"fraud_scan": "pass", "authorize_payment": "authorized", "fulfill": "fulfilled"}


@dataclass
class FakeLegacy:
    """Answers every per-order call as configured and records the calls that write.

    ``decisions`` overrides a step's decision; ``failures`` maps a step to exceptions
    raised on its first calls, one per call, before it answers normally.
    """

    claimable: bool = True
    decisions: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[tuple[str, str, bool]] = field(default_factory=list)
    released: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, step: str, errors: Iterable[Exception]) -> None:
        """Make the next calls of ``step`` raise ``errors``, one each."""
        self.failures.setdefault(step, []).extend(errors)

    def _maybe_fail(self, step: str) -> None:
        pending = self.failures.get(step)
        if pending:
            raise pending.pop(0)

    def claim(self, order_id: str) -> bool:
        self._maybe_fail("claim")
        self.calls.append(("claim", order_id, False))
        return self.claimable

    def release(self, order_id: str, reason: str) -> None:
        self._maybe_fail("release")
        self.calls.append(("release", order_id, False))
        self.released.append((order_id, reason))

    def _step(self, step: str, order_id: str, dry_run: bool) -> StepOutcome:
        self._maybe_fail(step)
        self.calls.append((step, order_id, dry_run))
        decision = self.decisions.get(step, _DECISIONS[step])
        details = {"vouchers": [f"V-{order_id}-1"]} if decision == "fulfilled" else {}
        return StepOutcome(
            step=step,
            decision=decision,
            order_status="pending" if dry_run else decision,
            dry_run=dry_run,
            details=details,
            order_id=order_id,
        )

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        return self._step("fraud_scan", order_id, dry_run)

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        return self._step("authorize_payment", order_id, dry_run)

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        return self._step("fulfill", order_id, dry_run)
