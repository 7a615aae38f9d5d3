"""Seconds to terminal, defined once for the report and ``/metrics``, in SQL on both databases.

An order's processing time is :func:`seconds_to_terminal`: from ``received_at`` (the
notification taken in) to ``terminal_at`` (its terminal status), counted for the orders
that are terminal. The report's percentiles and histogram
(strangler.ledger.report_queries) and the ``strangler_order_processing_seconds``
histogram (:func:`duration_histogram`) both read it, so they cannot disagree.

Seconds between two ledger timestamps are exact to the microsecond on both databases.

PostgreSQL subtracts ``timestamptz`` values exactly. SQLite stores naive UTC text
(``YYYY-MM-DD HH:MM:SS.ffffff``) and its date functions round to the millisecond: a
fraction of .9995 s or more rounds into the next second, so the whole seconds are taken
from the text cut before the fraction, and the fraction (six digits) is added apart. The
whole seconds between two such cut timestamps are ``round((julianday(end) -
julianday(start)) * 86400)``: exact, since a julianday's float error (under 0.1 ms for
any year to 9999) is far below half a second, and about a third cheaper per row than
two ``strftime('%s', ...)`` (no text made and cast back), which matters on a report's
scan of a million orders. No float ever holds a 10-digit epoch with its fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from strangler.ledger.records import DurationBuckets
from strangler.ledger.schema import orders

__all__ = ["ENDED", "duration_histogram", "seconds_between", "seconds_to_terminal"]

#: The orders whose processing time counts: those with a terminal status.
ENDED = orders.c.terminal_at.is_not(None)

_WHOLE_SECONDS = 19  # len("YYYY-MM-DD HH:MM:SS")


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds as a float, exact to the microsecond (NULL if either is)."""
    if dialect == "sqlite":
        whole = sa.func.round((_sqlite_day(end) - _sqlite_day(start)) * 86400.0)
        return whole + (_sqlite_fraction(end) - _sqlite_fraction(start))
    return sa.cast(sa.extract("epoch", end - start), sa.Float)


def _sqlite_day(column: Any) -> ColumnElement[float]:
    """The julian day of a stored naive-UTC timestamp cut to the whole second."""
    return sa.func.julianday(sa.func.substr(column, 1, _WHOLE_SECONDS))


def _sqlite_fraction(column: Any) -> ColumnElement[float]:
    """The fraction of a second of a stored naive-UTC timestamp (0.0 when it has none)."""
    return sa.func.coalesce(sa.cast(sa.func.substr(column, _WHOLE_SECONDS + 1), sa.Float), 0.0)


def seconds_to_terminal(dialect: str) -> ColumnElement[float]:
    """An order's processing time: seconds from ``received_at`` to ``terminal_at``."""
    return seconds_between(dialect, orders.c.received_at, orders.c.terminal_at)


def duration_histogram(conn: sa.Connection, bounds: Sequence[float]) -> list[DurationBuckets]:
    """Processing times of the terminal orders per (path, outcome), at most each bound.

    One aggregate query (one scan of the orders table); ``path`` is ``undecided`` for an
    order that ended before it was routed, ``outcome`` the terminal status.
    """
    seconds = seconds_to_terminal(conn.dialect.name)
    path = sa.func.coalesce(orders.c.path, "undecided")
    at_most = [
        sa.func.sum(sa.case((seconds <= bound, 1), else_=0)).label(f"le_{i}")
        for i, bound in enumerate(bounds)
    ]
    statement = (
        sa.select(
            path.label("path"),
            orders.c.status.label("outcome"),
            sa.func.count().label("n"),
            sa.func.sum(seconds).label("total_s"),
            *at_most,
        )
        .where(ENDED)
        .group_by(path, orders.c.status)
        .order_by(path, orders.c.status)
    )
    return [
        DurationBuckets(
            path=row.path,
            outcome=row.outcome,
            count=int(row.n),
            total_s=float(row.total_s or 0.0),
            at_most=tuple(int(row[i + 4] or 0) for i in range(len(bounds))),
        )
        for row in conn.execute(statement)
    ]
