"""Processing time per path and outcome, read from the ledger at scrape time.

An order becomes terminal in whichever process (or sidecar) finished it, and a
legacy-path order when the follower sees the batch jobs finish it, so counting in this
process would miss most of them. Each scrape therefore asks the ledger for the whole
histogram (:meth:`strangler.ledger.SqlLedger.duration_histogram`: one aggregate query,
no state kept here), so every worker and every sidecar reports the same figures, with
the same seconds to terminal as the report (strangler.ledger.durations).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import structlog
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from strangler.exceptions import StranglerError
from strangler.ledger.records import DurationBuckets

__all__ = ["ORDER_BUCKETS_S", "DurationsLedger", "OrderDurations"]

ORDER_BUCKETS_S = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_log = structlog.get_logger(__name__)


class DurationsLedger(Protocol):
    """A ledger that reads its orders' processing times (SqlLedger does)."""

    def duration_histogram(self, bounds: Sequence[float]) -> list[DurationBuckets]: ...


class OrderDurations(Collector):
    """``strangler_order_processing_seconds{path,outcome}``: received to terminal."""

    def __init__(
        self, ledger: DurationsLedger, *, bounds: Sequence[float] = ORDER_BUCKETS_S
    ) -> None:
        self._ledger = ledger
        self._bounds = tuple(bounds)

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
            histogram = self._ledger.duration_histogram(self._bounds)
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
            (_le(bound), float(n)) for bound, n in zip(self._bounds, buckets.at_most, strict=True)
        ]
        return [*cumulative, ("+Inf", float(buckets.count))]


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``600.0``, ``+Inf``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
