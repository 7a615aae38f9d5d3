"""The noise baseline: legacy's own per-order API in dry run beside its batch jobs.

For a deterministic sample of legacy-path orders (``STRANGLER_NOISE_SAMPLE`` of them, by
a hash of the order id), right after routing, :class:`NoiseProbe` asks the legacy app's
per-order API what it would decide (``fraud_scan``, ``authorize_payment``, ``fulfill``,
each with ``dry_run``, stopping where a reject or decline would stop the order) and
records the answers as steps of path ``legacy`` with ``dry_run`` true and actor ``api``.
When the batch jobs finish the order, the comparer compares those with the batch jobs'
steps as kind ``noise``: how often legacy disagrees with itself (timing, state). A probe
the legacy app fails is stored at once as not compared, ``dry_run_failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import structlog

from strangler.compare.engine import not_compared
from strangler.compare.records import Comparison, ComparisonKind, NotComparedReason
from strangler.compare.sampling import in_sample
from strangler.compare.sides import COMPARED_STEPS
from strangler.exceptions import StranglerError
from strangler.legacy_adapter.models import StepOutcome
from strangler.orders import Route, StepResult

__all__ = ["LegacyDryRun", "NoiseLedger", "NoiseProbe"]

_log = structlog.get_logger()
_GOES_ON = frozenset({"pass", "authorized"})


@runtime_checkable
class LegacyDryRun(Protocol):
    """The legacy per-order API's three steps (LegacyClient implements them)."""

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...


class NoiseLedger(Protocol):
    """What the probe writes to the ledger (SqlLedger implements it)."""

    def record_steps(self, steps: Sequence[tuple[StepResult, int]]) -> int: ...

    def record_comparison(self, comparison: Comparison) -> bool: ...


class NoiseProbe:
    """Runs legacy's per-order API in dry run for the sampled share of legacy orders."""

    def __init__(
        self,
        ledger: NoiseLedger,
        legacy: LegacyDryRun,
        *,
        share: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the noise sample share must be between 0 and 1, got {share}")
        self.ledger = ledger
        self.legacy = legacy
        self.share = share
        self._clock = clock

    def sampled(self, order_id: str) -> bool:
        """True when ``order_id`` is in the noise sample (always the same answer)."""
        return in_sample(order_id, self.share)

    def probe(self, order_id: str) -> bool:
        """Dry-run a sampled order through the per-order API; True when its steps were kept.

        Never raises: a legacy error stores the order as not compared (``dry_run_failed``);
        a ledger error is logged (the order then stays out of the baseline).
        """
        if not self.sampled(order_id):
            return False
        log = _log.bind(order_id=order_id)
        try:
            self.ledger.record_steps([(step, 0) for step in self._run(order_id)])
        except StranglerError as exc:
            log.warning("noise_probe_failed", error=str(exc))
            self._give_up(order_id)
            return False
        except Exception as exc:  # a probe must never fail routing
            log.warning("noise_probe_failed", error=repr(exc))
            return False
        log.info("noise_probe_recorded")
        return True

    def _run(self, order_id: str) -> list[StepResult]:
        steps = []
        for name in COMPARED_STEPS:
            started = self._clock()
            answer: StepOutcome = getattr(self.legacy, name)(order_id, dry_run=True)
            steps.append(_record(order_id, name, answer, started, self._clock()))
            if answer.decision not in _GOES_ON:
                break
        return steps

    def _give_up(self, order_id: str) -> None:
        # Probed right after routing, so now stands for routed_at.
        now = self._clock()
        comparison = not_compared(
            order_id,
            ComparisonKind.NOISE,
            NotComparedReason.DRY_RUN_FAILED,
            routed_at=now,
            compared_at=now,
        )
        try:
            self.ledger.record_comparison(comparison)
        except Exception as exc:  # logged; the order stays out of the baseline
            _log.warning("noise_probe_not_recorded", order_id=order_id, error=str(exc))


def _record(
    order_id: str, name: str, answer: StepOutcome, started: datetime, finished: datetime
) -> StepResult:
    payload: dict[str, Any] = {"actor": "api"}
    if answer.reason is not None:
        payload["reason"] = answer.reason
    if answer.vouchers:
        payload["voucher_count"] = len(answer.vouchers)
    return StepResult(
        order_id=order_id,
        path=Route.LEGACY,
        step=name,
        decision=answer.decision,
        started_at=started,
        finished_at=finished,
        payload=payload,
        dry_run=True,
    )
