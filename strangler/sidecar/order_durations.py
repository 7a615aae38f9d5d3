"""Processing time per path and outcome, read from the ledger at scrape time.

An order becomes terminal in whichever process (or sidecar) finished it, and a
legacy-path order when the follower sees the batch jobs finish it, so counting in this
process would miss most of them. The ledger counts each order into the histogram in the
transaction that ends it (strangler.ledger.tally), and each scrape reads those few rows
(:meth:`strangler.ledger.SqlLedger.duration_histogram`), so every worker and every
sidecar reports the same figures, with the same seconds to terminal as the report
(strangler.ledger.durations), and archiving old orders never lowers a count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import structlog
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from strangler.exceptions import StranglerError
from strangler.ledger.durations import ORDER_BUCKETS_S
from strangler.ledger.records import DurationBuckets

__all__ = ["ORDER_BUCKETS_S", "DurationsLedger", "OrderDurations"]

_log = structlog.get_logger(__name__)


class DurationsLedger(Protocol):
    """A ledger that reads its orders' processing times (SqlLedger does)."""

    def duration_histogram(self) -> list[DurationBuckets]: ...


class OrderDurations(Collector):
    """``strangler_order_processing_seconds{path,outcome}``: received to terminal."""

    def __init__(self, ledger: DurationsLedger) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[Metric]:
        """Yield one histogram per (path, outcome) of the orders that are terminal.

        The family is empty when the ledger cannot be read (``strangler_ledger_up`` says so).
        """
        family = HistogramMetricFamily(
            "strangler_order_processing_seconds",
            "Time from notification to terminal status, per path and outcome (ledger-wide).",
            labels=["path", "outcome"],
        )
        try:
            histogram = self._ledger.duration_histogram()
        except StranglerError as exc:
            _log.warning("order_durations_unreadable", error=str(exc))
            histogram = []
        for buckets in histogram:
            family.add_metric(
                [buckets.path, buckets.outcome],
                buckets=self._buckets(buckets),
                sum_value=buckets.total_s,
            )
        yield family

    def _buckets(self, buckets: DurationBuckets) -> list[tuple[str, float]]:
        cumulative = [
            (_le(bound), float(n))
            for bound, n in zip(ORDER_BUCKETS_S, buckets.at_most, strict=True)
        ]
        return [*cumulative, ("+Inf", float(buckets.count))]


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``600.0``, ``+Inf``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
