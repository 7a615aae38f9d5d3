"""Compare orders when their second side arrives, and sweep for the ones left behind.

The IO half of the comparison (the pure half is strangler.compare): :meth:`Comparer.notify`
is called where a side is recorded (the router after a shadow dry run, the follower when
legacy ends an order) and never raises, so it never blocks or fails routing; a failure is
logged and the periodic :meth:`Comparer.sweep` picks the order up again. The sweep also
gives up, with their reason, orders that are still missing a side after
``STRANGLER_COMPARE_MAX_AGE_S``. Every store is idempotent (one row per order and kind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from strangler.background.role_loop import Cadence
from strangler.compare.comparators import DEFAULT_COMPARATORS, Comparator
from strangler.compare.config import CompareConfig
from strangler.compare.pairing import OrderRecord, kinds_of, plan
from strangler.compare.records import Comparison, ComparisonKind

__all__ = ["Comparer", "ComparisonLedger"]

_log = structlog.get_logger()


class ComparisonLedger(Protocol):
    """The part of the ledger the comparer uses (SqlLedger implements it)."""

    def comparison_record(self, order_id: str) -> OrderRecord | None: ...

    def record_comparison(self, comparison: Comparison) -> bool: ...

    def due_for_comparison(
        self, kind: ComparisonKind, *, older_than: datetime, limit: int
    ) -> list[str]: ...


class Comparer:
    """Loads both sides of an order from the ledger, compares them and stores the result once.

    ``sweep_interval_s`` spaces the sweeps :meth:`sweep_if_due` runs; ``batch`` bounds
    the orders one sweep query takes.
    """

    def __init__(
        self,
        ledger: ComparisonLedger,
        config: CompareConfig | None = None,
        *,
        comparators: Mapping[str, Comparator] = DEFAULT_COMPARATORS,
        sweep_interval_s: float = 30.0,
        batch: int = 500,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.config = config or CompareConfig()
        self.comparators = comparators
        self.sweep_interval_s = sweep_interval_s
        self.batch = batch
        self._clock = clock
        self._sweeps = Cadence(sweep_interval_s)

    def compare_order(self, order_id: str, kind: ComparisonKind | None = None) -> list[Comparison]:
        """Compare ``order_id`` (every kind it takes part in, or ``kind``) if it can be now.

        Returns the comparisons stored now (none while a side is missing, or when stored
        before). Raises LedgerError when the ledger fails.
        """
        record = self.ledger.comparison_record(order_id)
        if record is None:
            return []
        stored = []
        for each in (kind,) if kind is not None else kinds_of(record):
            comparison = plan(
                record, each, now=self._clock(), config=self.config, comparators=self.comparators
            )
            if comparison is not None and self.ledger.record_comparison(comparison):
                _logged(comparison)
                stored.append(comparison)
        return stored

    def notify(self, order_id: str) -> None:
        """A side of ``order_id`` was recorded: compare it if both are known. Never raises."""
        try:
            self.compare_order(order_id)
        except Exception as exc:  # the sweep retries; a hook must never fail its caller
            _log.warning("comparison_deferred", order_id=order_id, error=str(exc))

    def sweep(self) -> int:
        """Compare or give up every order that can be decided now; returns how many were stored.

        Raises LedgerError when the ledger fails.
        """
        stored = 0
        older_than = self._clock() - timedelta(seconds=self.config.max_age_s)
        kind = ComparisonKind.SHADOW  # noise is strangler.background.noise's (the same side twice)
        while True:
            due = self.ledger.due_for_comparison(kind, older_than=older_than, limit=self.batch)
            done = sum(len(self.compare_order(order_id, kind)) for order_id in due)
            stored += done
            if len(due) < self.batch or done == 0:
                break
        if stored:
            _log.info("comparison_sweep_done", stored=stored)
        return stored

    def sweep_if_due(self) -> None:
        """Run :meth:`sweep` when ``sweep_interval_s`` has passed since the last; never raises."""
        if not self._sweeps.due():
            return
        try:
            self.sweep()
        except Exception as exc:  # the next sweep tries again
            _log.warning("comparison_sweep_failed", error=str(exc))


def _logged(comparison: Comparison) -> None:
    _log.info(
        "comparison_stored",
        order_id=comparison.order_id,
        kind=comparison.kind.value,
        status=comparison.status,
        reason=comparison.reason.value if comparison.reason else None,
        mismatch=comparison.mismatch,
        mismatched_steps=[s.step for s in comparison.steps if not s.match],
    )
