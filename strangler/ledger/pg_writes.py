"""PostgreSQL's one-statement writes: an instant order's pin and its finish, and the claim.

The pin and the finish are one statement of data-modifying CTEs each, sent on an
autocommitted connection (``SqlLedger._alone``): one round trip where BEGIN, each
statement and COMMIT were one each. Both commits keep ``synchronous_commit`` on (durable
on return). Each covers the usual case only and returns no row otherwise, having changed
nothing but what the multi-statement path would do first anyway (the finish's step
results, idempotent); the caller then runs that path (:mod:`strangler.ledger.sql_ledger`),
which writes the same rows. SQLite keeps the multi-statement path: its writes cost no
round trips.

The dispatcher's claim (:data:`strangler.ledger.statements.CLAIM_DUE_UNFLUSHED`, on every
order's way from intake to routing) runs on the psycopg connection under the pooled one
(:func:`claim_due`): SQLAlchemy's execution and result set-up cost about a third of a
claim's time in a routing process that was idle (0.3 ms of 0.9-1.0 ms; see
docs/BENCHMARKS.md). The statement is compiled once by SQLAlchemy for PostgreSQL, and its
values go through the columns' own SQLAlchemy types both ways, so a claim binds and reads
exactly what the SQLAlchemy path did; a driver error comes out as SQLAlchemy's, a lost
connection invalidated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from strangler.ledger import statements
from strangler.ledger.schema import orders, step_results
from strangler.ledger.statements import STEP_COLUMNS, STEP_KEY, statuses_behind
from strangler.orders import OrderStatus

__all__ = ["MAX_STEPS", "PIN_AND_START", "claim_due", "finish", "step_params"]

# The most step results a finish writes in its one statement (11 parameters each; an
# instant pipeline has a handful): more take the multi-statement path, so that the
# statements cached here stay few and small.
MAX_STEPS = 32

_o = orders.c
_PIN_PARAMS = {
    "p_order_id": _o.order_id.type,
    "p_path": _o.path.type,
    "p_variant": _o.variant.type,
    "p_rollout": _o.rollout.type,
    "p_flag_revision": _o.flag_revision.type,
    "p_decision_reason": _o.decision_reason.type,
    "p_now": _o.updated_at.type,
}

# statements.PIN_AND_START (the orders row holds both moves, routed with the decision's
# reason: strangler.ledger.moves). Only for an order still received, with no path and
# no hand-off: the multi-statement path ends a followed order as the legacy app did.
# Parameters: statements.params(order_id, path, variant, rollout, flag_revision,
# decision_reason, now). A row back when it pinned now.
# The statuses and column names put in these statements come from the code, never input.
PIN_AND_START = sa.text(
    "UPDATE orders SET path = :p_path, variant = :p_variant, rollout = :p_rollout,"  # noqa: S608
    " flag_revision = :p_flag_revision, decision_reason = :p_decision_reason,"
    f" status = '{OrderStatus.RUNNING.value}', updated_at = :p_now, routed_at = :p_now,"
    " running_at = :p_now"
    f" WHERE order_id = :p_order_id AND path IS NULL AND status = '{OrderStatus.RECEIVED.value}'"
    " AND handoff IS NULL"
    " RETURNING order_id"
).bindparams(*(sa.bindparam(name, type_=type_) for name, type_ in _PIN_PARAMS.items()))


@functools.lru_cache(maxsize=4 * (MAX_STEPS + 1))
def finish(status: OrderStatus, steps: int) -> sa.TextClause:
    """``steps`` step results, ``status`` reached at ``at`` and the owner's lease released.

    statements.INSERT_STEP_QUIETLY (always, duplicates skipped) and statements.finish_held
    (the orders row holds the move: strangler.ledger.moves), in one statement. Parameters:
    ``p_order_id``, ``p_owner``, ``p_at``, ``p_now``, and per step ``i`` one
    ``s<i>_<column>`` per step column. A row
    back when the order ended now (it was behind ``status`` and ``owner`` held its lease).
    Raises ValueError for a status that is not terminal or a negative ``steps``.
    """
    if not status.is_terminal:
        raise ValueError(f"finish() ends an order; {status} is not a terminal status")
    if not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"finish() records 0 to {MAX_STEPS} steps in one statement, not {steps}")
    behind = ", ".join(f"'{value}'" for value in statuses_behind(status))
    ctes = []
    if steps:
        rows = ", ".join(
            "(" + ", ".join(f":s{i}_{column}" for column in STEP_COLUMNS) + ")"
            for i in range(steps)
        )
        ctes.append(
            f"recorded AS (INSERT INTO step_results ({', '.join(STEP_COLUMNS)}) VALUES {rows}"  # noqa: S608
            f" ON CONFLICT ({', '.join(STEP_KEY)}) DO NOTHING)"
        )
    ctes.append(
        f"ended AS (UPDATE orders SET status = '{status.value}', outcome = '{status.value}',"  # noqa: S608
        " updated_at = :p_now, terminal_at = :p_at, lease_owner = NULL,"
        " lease_expires_at = NULL, needs_dispatch = false, next_attempt_at = :p_now"
        f" WHERE order_id = :p_order_id AND status IN ({behind}) AND lease_owner = :p_owner"
        " RETURNING order_id)"
    )
    sql = f"WITH {', '.join(ctes)} SELECT order_id FROM ended"  # noqa: S608
    typed = [
        sa.bindparam("p_order_id", type_=_o.order_id.type),
        sa.bindparam("p_owner", type_=_o.lease_owner.type),
        sa.bindparam("p_at", type_=_o.terminal_at.type),
        sa.bindparam("p_now", type_=_o.updated_at.type),
    ]
    typed += [
        sa.bindparam(f"s{i}_{column}", type_=step_results.c[column].type)
        for i in range(steps)
        for column in STEP_COLUMNS
    ]
    return sa.text(sql).bindparams(*typed)


def step_params(rows: list[dict[str, object]]) -> dict[str, object]:
    """The ``s<i>_<column>`` parameters of :func:`finish` for rows as INSERT_STEP_QUIETLY's."""
    return {f"s{i}_{column}": row[column] for i, row in enumerate(rows) for column in STEP_COLUMNS}


def claim_due(
    conn: sa.Connection, *, owner: str, limit: int, now: datetime, expires: datetime
) -> list[Mapping[str, Any]]:
    """Run the claim on ``conn``'s psycopg connection (autocommitted by the caller): the
    claimed rows as mappings by column name, values as SQLAlchemy would read them.

    Raises SQLAlchemy's DBAPIError for a driver error, having invalidated ``conn`` when the
    connection is lost (the pool then connects afresh).
    """
    claim = _claim(conn.dialect)
    values = claim.bound(statements.params(now=now, limit=limit, owner=owner, expires=expires))
    dbapi_connection: Any = conn.connection.driver_connection
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(claim.sql, values)
            rows = cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            claim.sql, values, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from exc
    return [claim.mapping(row) for row in rows]


Processor = Callable[[Any], Any]


class _Compiled:
    """A statement compiled for PostgreSQL once: its SQL, its fixed parameters, and the
    SQLAlchemy conversions of its parameters and of the ``returning`` columns' values."""

    def __init__(
        self, statement: sa.ClauseElement, returning: Sequence[sa.Column[Any]], dialect: sa.Dialect
    ) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        assert not compiled.post_compile_params, "an expanding IN is rendered per call"
        self.sql = compiled.string
        # The values the statement itself fixes (the given ones are filled in per call).
        given = {name: None for name in compiled.binds if name.startswith("p_")}
        fixed = compiled.construct_params(given)
        self._fixed = {name: value for name, value in fixed.items() if name not in given}
        self._binders: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._binders[name] = process
        self._columns: list[tuple[str, Processor | None]] = [
            (column.name, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in returning
        ]

    def bound(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The statement's parameters: its fixed ones and ``values``, converted."""
        merged = {**self._fixed, **values}
        for name, process in self._binders.items():
            if name in merged:
                merged[name] = process(merged[name])
        return merged

    def mapping(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """One returned row, by column name, each value converted by its column's type."""
        return {
            name: value if process is None or value is None else process(value)
            for (name, process), value in zip(self._columns, row, strict=True)
        }


@functools.lru_cache(maxsize=2)
def _claim(dialect: sa.Dialect) -> _Compiled:
    return _Compiled(statements.CLAIM_DUE_UNFLUSHED, statements.LEASED_COLUMNS, dialect)
