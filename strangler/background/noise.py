"""The noise baseline: repeatability, the same side judging the same order twice.

Diffy's reasoning: run the same side twice on the same request; whatever differs between
those two runs is noise (timing, state, randomness), and only a disagreement beyond it
says the candidate behaves differently. A disagreement that repeats for an order is not
noise: it is a behaviour change its customer receives.

For a deterministic sample of legacy-path orders (``STRANGLER_NOISE_SAMPLE`` of them, by
a hash of the order id), :meth:`NoiseProbe.probe` asks the legacy app's per-order API,
right after routing, what it would decide (``fraud_scan``, ``authorize_payment``,
``fulfill``, each with ``dry_run``, stopping where a reject or decline would stop the
order) and records the answers as steps of path ``legacy`` with ``dry_run`` true and
actor ``api``. Later, when the batch jobs have finished the order (the follower's hook,
or the sweep for orders overdue), :meth:`NoiseProbe.repeat` asks the same steps again
and stores kind ``noise``: the second run (candidate) against the first (baseline). A
divergence the per-order API makes deterministically for an order shows in both runs and
never counts as noise. A run the legacy app fails is stored as not compared,
``dry_run_failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import structlog

from strangler.background.role_loop import Cadence
from strangler.compare.config import CompareConfig
from strangler.compare.engine import compare, not_compared
from strangler.compare.pairing import OrderRecord
from strangler.compare.records import Comparison, ComparisonKind, NotComparedReason
from strangler.compare.sampling import in_sample
from strangler.compare.sides import COMPARED_STEPS, outcome_from_steps, side_from_steps
from strangler.exceptions import StranglerError
from strangler.legacy_adapter.models import StepOutcome
from strangler.orders import Route, StepResult

__all__ = ["LegacyDryRun", "NoiseLedger", "NoiseProbe"]

_log = structlog.get_logger()
_GOES_ON = frozenset({"pass", "authorized"})
_KIND = ComparisonKind.NOISE


@runtime_checkable
class LegacyDryRun(Protocol):
    """The legacy per-order API's three steps (LegacyClient implements them)."""

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...


class NoiseLedger(Protocol):
    """What the probe reads and writes (SqlLedger implements it)."""

    def record_steps(self, steps: Sequence[tuple[StepResult, int]]) -> int: ...

    def record_comparison(self, comparison: Comparison) -> bool: ...

    def comparison_record(self, order_id: str) -> OrderRecord | None: ...

    def due_for_comparison(
        self, kind: ComparisonKind, *, older_than: datetime, limit: int
    ) -> list[str]: ...


class NoiseProbe:
    """Judges the sampled share of legacy orders twice through the per-order API dry run.

    ``config`` gives the comparison rules and ``max_age_s`` (an order whose batch jobs
    have not finished this long after routing is repeated by the sweep anyway);
    ``sweep_interval_s`` spaces :meth:`sweep_if_due`.
    """

    def __init__(
        self,
        ledger: NoiseLedger,
        legacy: LegacyDryRun,
        *,
        share: float,
        config: CompareConfig | None = None,
        sweep_interval_s: float = 30.0,
        batch: int = 200,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the noise sample share must be between 0 and 1, got {share}")
        self.ledger = ledger
        self.legacy = legacy
        self.share = share
        self.config = config or CompareConfig()
        self.batch = batch
        self._clock = clock
        self._sweeps = Cadence(sweep_interval_s)

    def sampled(self, order_id: str) -> bool:
        """True when ``order_id`` is in the noise sample (always the same answer)."""
        return in_sample(order_id, self.share)

    def probe(self, order_id: str) -> bool:
        """First run: dry-run a sampled order and keep its steps; True when they were kept.

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
            self._give_up(order_id, self._clock())
            return False
        except Exception as exc:  # a probe must never fail routing
            log.warning("noise_probe_failed", error=repr(exc))
            return False
        log.info("noise_probe_recorded")
        return True

    def repeat(self, order_id: str) -> bool:
        """Second run: judge a probed order again and store the noise comparison.

        Returns True when a comparison was stored now. Never raises (a hook of the
        follower): a legacy error stores ``dry_run_failed``, a ledger error is logged and
        the sweep tries again.
        """
        try:
            return self._repeat(order_id)
        except Exception as exc:  # the sweep retries; a hook must never fail its caller
            _log.warning("noise_repeat_deferred", order_id=order_id, error=repr(exc))
            return False

    def sweep(self) -> int:
        """Repeat every probed order that is due (batch jobs done, or overdue); how many.

        Raises LedgerError when the ledger fails.
        """
        older_than = self._clock() - timedelta(seconds=self.config.max_age_s)
        due = self.ledger.due_for_comparison(_KIND, older_than=older_than, limit=self.batch)
        return sum(self.repeat(order_id) for order_id in due)

    def sweep_if_due(self) -> None:
        """Run :meth:`sweep` when its interval has passed; never raises."""
        if not self._sweeps.due():
            return
        try:
            self.sweep()
        except Exception as exc:  # the next sweep tries again
            _log.warning("noise_sweep_failed", error=str(exc))

    def _repeat(self, order_id: str) -> bool:
        record = self.ledger.comparison_record(order_id)
        if record is None or record.routed_at is None or record.path != Route.LEGACY.value:
            return False
        first = record.candidate_steps(_KIND)
        if not first:
            return False
        now = self._clock()
        try:
            second = self._run(order_id)
        except StranglerError as exc:
            _log.warning("noise_repeat_failed", order_id=order_id, error=str(exc))
            return self._give_up(order_id, record.routed_at)
        baseline = side_from_steps(first, outcome_from_steps(first))
        candidate = side_from_steps(second, outcome_from_steps(second))
        comparison = compare(
            order_id,
            _KIND,
            candidate,
            baseline,
            routed_at=record.routed_at,
            compared_at=now,
            config=self.config,
        )
        stored = self.ledger.record_comparison(comparison)
        if stored:
            _log.info("noise_compared", order_id=order_id, mismatch=comparison.mismatch)
        return stored

    def _run(self, order_id: str) -> list[StepResult]:
        steps = []
        for name in COMPARED_STEPS:
            started = self._clock()
            answer: StepOutcome = getattr(self.legacy, name)(order_id, dry_run=True)
            steps.append(_record(order_id, name, answer, started, self._clock()))
            if answer.decision not in _GOES_ON:
                break
        return steps

    def _give_up(self, order_id: str, routed_at: datetime) -> bool:
        comparison = not_compared(
            order_id,
            _KIND,
            NotComparedReason.DRY_RUN_FAILED,
            routed_at=routed_at,
            compared_at=self._clock(),
        )
        try:
            return self.ledger.record_comparison(comparison)
        except Exception as exc:  # logged; the order stays out of the baseline
            _log.warning("noise_probe_not_recorded", order_id=order_id, error=str(exc))
            return False


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
