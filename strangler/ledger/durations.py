"""Seconds between two ledger timestamps, in SQL, exact to the microsecond on both databases.

PostgreSQL subtracts ``timestamptz`` values exactly. SQLite stores naive UTC text
(``YYYY-MM-DD HH:MM:SS.ffffff``) and its date functions round to the millisecond: a
fraction of .9995 s or more rounds into the next second inside ``strftime('%s', ...)``,
so the whole seconds are taken from the text cut before the fraction, and the fraction
(six digits) is added apart. No float ever holds a 10-digit epoch with its fraction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["seconds_between"]

_WHOLE_SECONDS = 19  # len("YYYY-MM-DD HH:MM:SS")


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds as a float, exact to the microsecond (NULL if either is)."""
    if dialect == "sqlite":
        end_whole, end_fraction = _sqlite_parts(end)
        start_whole, start_fraction = _sqlite_parts(start)
        return sa.cast(end_whole - start_whole, sa.Float) + (end_fraction - start_fraction)
    return sa.cast(sa.extract("epoch", end - start), sa.Float)


def _sqlite_parts(column: Any) -> tuple[ColumnElement[int], ColumnElement[float]]:
    """Whole seconds since 1970 and the fraction of a stored naive-UTC timestamp."""
    whole = sa.cast(sa.func.strftime("%s", sa.func.substr(column, 1, _WHOLE_SECONDS)), sa.Integer)
    fraction = sa.func.coalesce(sa.cast(sa.func.substr(column, _WHOLE_SECONDS + 1), sa.Float), 0.0)
    return whole, fraction
