"""Processing time per path and outcome, read from the ledger at scrape time.

An order becomes terminal in whichever process (or sidecar) finished it, and a
legacy-path order when the follower sees the batch jobs finish it, so counting in this
process would miss most of them. Each scrape therefore asks the ledger for the whole
histogram in one aggregate query (one scan of the orders table, no state kept here), so
every worker and every sidecar reports the same figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from strangler.ledger.durations import seconds_between
from strangler.ledger.engine import read_snapshot
from strangler.ledger.schema import orders

__all__ = ["ORDER_BUCKETS_S", "OrderDurations"]

ORDER_BUCKETS_S = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_log = structlog.get_logger(__name__)


class OrderDurations(Collector):
    """``strangler_order_processing_seconds{path,outcome}``: received to terminal."""

    def __init__(self, engine: sa.Engine, *, bounds: Sequence[float] = ORDER_BUCKETS_S) -> None:
        self._engine = engine
        self._bounds = tuple(bounds)
        self._query = _histogram_query(_seconds(engine.dialect.name), self._bounds)

    def collect(self) -> Iterator[Metric]:
        """Yield one histogram per (path, outcome) of the orders that are terminal."""
        family = HistogramMetricFamily(
            "strangler_order_processing_seconds",
            "Time from notification to terminal status, per path and outcome (ledger-wide).",
            labels=["path", "outcome"],
        )
        try:
            with read_snapshot(self._engine) as conn:
                rows = conn.execute(self._query).all()
        except sa.exc.SQLAlchemyError as exc:
            _log.warning("order_durations_unreadable", error=str(exc))
            rows = []
        for row in rows:
            family.add_metric(
                [row.path, row.outcome],
                buckets=self._buckets(row),
                sum_value=float(row.total_s or 0.0),
            )
        yield family

    def _buckets(self, row: Any) -> list[tuple[str, float]]:
        cumulative = [(_le(bound), float(row[i + 3])) for i, bound in enumerate(self._bounds)]
        return [*cumulative, ("+Inf", float(row.n))]


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``600.0``, ``+Inf``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def _seconds(dialect: str) -> sa.ColumnElement[float]:
    return seconds_between(dialect, orders.c.received_at, orders.c.terminal_at)


def _histogram_query(seconds: sa.ColumnElement[float], bounds: Sequence[float]) -> sa.Select[Any]:
    path = sa.func.coalesce(orders.c.path, "undecided")
    at_most = [
        sa.func.sum(sa.case((seconds <= bound, 1), else_=0)).label(f"le_{i}")
        for i, bound in enumerate(bounds)
    ]
    return (
        sa.select(
            path.label("path"),
            orders.c.status.label("outcome"),
            sa.func.count().label("n"),
            *at_most,
            sa.func.sum(seconds).label("total_s"),
        )
        .where(orders.c.terminal_at.is_not(None))
        .group_by(path, orders.c.status)
        .order_by(path, orders.c.status)
    )
