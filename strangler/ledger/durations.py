"""Seconds to terminal, defined once for the report and ``/metrics``, in SQL on both databases.

An order's processing time is :func:`seconds_to_terminal`: from ``received_at`` (the
notification taken in) to ``terminal_at`` (its terminal status), counted for the orders
that are terminal. The report's percentiles and histogram
(strangler.ledger.report_queries) and the ``strangler_order_processing_seconds``
histogram (kept by a trigger as orders end, strangler.ledger.tally, in the buckets
:data:`ORDER_BUCKETS_S`) both compute it with :func:`seconds_between`, so they cannot
disagree.

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

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from strangler.ledger.schema import orders

__all__ = ["ENDED", "ORDER_BUCKETS_S", "seconds_between", "seconds_to_terminal"]

#: The bounds (seconds) of the processing-time histogram's buckets; fixed, since the
#: ledger counts each ended order into them once (strangler.ledger.tally).
ORDER_BUCKETS_S = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

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
