"""The ledger's statements, built once with bind parameters and reused on every call.

Building a SQLAlchemy statement and computing its cache key on each call cost more than
running it; a statement object built once keeps its cache key, so each call only binds
values. The frequent ``INSERT ... ON CONFLICT DO NOTHING`` are typed SQL text, because
SQLAlchemy 2.0 does not cache the dialects' ON CONFLICT constructs at all; their syntax
is the same on SQLite (3.35+) and PostgreSQL. Everything here runs on both databases
(SQLite ignores ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strangler.ledger.records import Handoff
from strangler.ledger.schema import orders, step_results, transitions, worker_leases
from strangler.orders import TERMINAL_STATUSES, OrderStatus, Outcome, Route, StepResult

__all__ = [
    "CLAIM_DUE",
    "CLAIM_DUE_SQLITE",
    "CLAIM_DUE_UNFLUSHED",
    "FAILED_OR_FELL_BACK",
    "FLUSH_COMMITTED",
    "FOLLOWED",
    "HOLD_ROLE",
    "INSERT_ORDER",
    "INSERT_ORDER_NOTIFYING",
    "INSERT_STEP_QUIETLY",
    "INSERT_TRANSITION",
    "INTAKE_CHANNEL",
    "LEASED_COLUMNS",
    "LEGACY_END",
    "LEGACY_SEEN",
    "OPEN_ORDERS",
    "ORDER_BY_ID",
    "ORDER_COLUMNS",
    "ORDER_COUNTS",
    "PIN_AND_START",
    "PIN_AND_START_UNHANDED",
    "PIN_DECISION",
    "RELEASE_LEASE",
    "RENEW_LEASES",
    "RETURN_UNSTARTED",
    "SET_DRY_RUN_OUTCOME",
    "STEP_COLUMNS",
    "STEP_KEY",
    "finish_held",
    "move",
    "params",
    "statuses_behind",
    "step_rows",
]

_o = orders.c
_RANK = {
    OrderStatus.RECEIVED: 0,
    OrderStatus.ROUTED: 1,
    OrderStatus.RUNNING: 2,
    OrderStatus.FELL_BACK: 3,
    **dict.fromkeys(TERMINAL_STATUSES, 4),
}
_TIMESTAMP_COLUMN = {
    OrderStatus.ROUTED: "routed_at",
    OrderStatus.RUNNING: "running_at",
    OrderStatus.FELL_BACK: "fell_back_at",
    **dict.fromkeys(TERMINAL_STATUSES, "terminal_at"),
}


def _p(name: str, column: sa.Column[object]) -> sa.BindParameter[object]:
    """A bind parameter typed like ``column`` (so UTC datetimes and JSON are processed).

    Named ``p_<name>``: SQLAlchemy reserves column names for its own UPDATE parameters.
    """
    return sa.bindparam(f"p_{name}", type_=column.type)


def params(**values: object) -> dict[str, object]:
    """The parameters of a statement built here, by their plain names."""
    return {f"p_{name}": value for name, value in values.items()}


def statuses_behind(status: OrderStatus) -> list[str]:
    """The status values an order may move forward to ``status`` from."""
    return [s.value for s, rank in _RANK.items() if rank < _RANK[status]]


def insert_ignoring_duplicates(
    table: sa.Table, columns: Sequence[str], *, key: Sequence[str], returning: str | None = None
) -> sa.TextClause:
    """``INSERT INTO table (columns) ... ON CONFLICT (key) DO NOTHING [RETURNING ...]``."""
    # Table and column names come from the schema module, never from input.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(':' + name for name in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )
    if returning:
        sql += f" RETURNING {returning}"
    return sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=table.c[name].type) for name in columns)
    )


# Orders whose progress the legacy follower records: the batch jobs run them.
FOLLOWED = sa.or_(_o.path.in_([Route.LEGACY.value, Route.SHADOW.value]), _o.handoff.is_not(None))

# The gate's error (its error_rate check): the order fell back to the batch jobs or ended
# failed. An order that did both is one error: the report and the metrics both count it so.
FAILED_OR_FELL_BACK = sa.or_(
    _o.outcome == Outcome.FAILED.value, _o.handoff == Handoff.FALLBACK.value
)
# The gate's errors among instant orders (adopted orders are reported apart, as "reconciled").
_INSTANT_ERROR = sa.and_(
    _o.path == Route.INSTANT.value, _o.source != "reconciled", FAILED_OR_FELL_BACK
)
# The orders per status, path, source and hand-off, and the instant errors among them: one
# pass over ix_orders_counts in its order (no table rows read, no sort), for /metrics.
ORDER_COUNTS = sa.select(
    _o.status,
    _o.path,
    _o.source,
    _o.handoff,
    sa.func.count().label("n"),
    sa.func.sum(sa.case((_INSTANT_ERROR, 1), else_=0)).label("instant_errors"),
).group_by(_o.status, _o.path, _o.source, _o.handoff)

# The columns a received order is written with (also the SQLite intake's driver INSERT).
ORDER_COLUMNS = (
    "order_id",
    "notification",
    "source",
    "status",
    "received_at",
    "updated_at",
    "needs_dispatch",
    "next_attempt_at",
    "attempts",
)
INSERT_ORDER = insert_ignoring_duplicates(orders, ORDER_COLUMNS, key=("order_id",))

# PostgreSQL only: sent in the intake's transaction, heard by strangler.ledger.notify.
INTAKE_CHANNEL = "strangler_intake"
# The INSERT and its NOTIFY in one statement (one round trip): a row back when inserted.
# The notification's payload is the order_id, so that a routing process woken for the
# same order by a same-host socket too acts on the first wake-up only. A new order
# commits without waiting for its WAL flush (set_config(..., true): for this transaction
# only), so that routing sees it and hears of it at once, while the intake waits for the
# flush with FLUSH_COMMITTED before it answers (see SqlLedger.record_received).
_INSERT_ORDER_RETURNING = insert_ignoring_duplicates(
    orders, ORDER_COLUMNS, key=("order_id",), returning="order_id"
)
INSERT_ORDER_NOTIFYING = sa.text(
    f"WITH inserted AS ({_INSERT_ORDER_RETURNING.text}) "  # noqa: S608  (no input in it)
    f"SELECT pg_notify('{INTAKE_CHANNEL}', order_id), "
    "set_config('synchronous_commit', 'off', true) FROM inserted"
).bindparams(*(sa.bindparam(name, type_=orders.c[name].type) for name in ORDER_COLUMNS))
# PostgreSQL: a transaction of its own that writes WAL (a transactional logical-decoding
# message, with no effect but a record in the WAL) and so waits at commit for the WAL to
# be flushed up to its commit record (synchronous_commit on): every transaction committed
# before it, unflushed ones included, is then durable. Taking a transaction id alone
# would not do: a transaction that wrote no WAL commits without a flush.
FLUSH_COMMITTED = sa.text("SELECT pg_logical_emit_message(true, 'strangler.intake', '')")

INSERT_TRANSITION = insert_ignoring_duplicates(
    transitions, ("order_id", "status", "at", "reason"), key=("order_id", "status")
)

STEP_COLUMNS = (
    "order_id",
    "path",
    "step",
    "dry_run",
    "seq",
    "decision",
    "payload",
    "started_at",
    "finished_at",
    "error",
    "recorded_at",
)
STEP_KEY = ("order_id", "path", "step", "dry_run", "seq")


def step_rows(
    steps: Sequence[tuple[StepResult, int]], recorded_at: datetime
) -> list[dict[str, Any]]:
    """The (step, seq) pairs as step_results rows recorded at ``recorded_at``, by column
    name (strangler.ledger.sqlite_steps builds the same rows as positional tuples)."""
    return [
        {
            "order_id": step.order_id,
            "path": step.path.value,
            "step": step.step,
            "dry_run": step.dry_run,
            "seq": seq,
            "decision": step.decision,
            "payload": dict(step.payload),
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "error": step.error,
            "recorded_at": recorded_at,
        }
        for step, seq in steps
    ]


# One executemany of many steps; the driver's rowcount is how many were new.
INSERT_STEP_QUIETLY = insert_ignoring_duplicates(step_results, STEP_COLUMNS, key=STEP_KEY)

# Take or keep a role: a row is returned only when ``owner`` holds it afterwards.
HOLD_ROLE = sa.text(
    "INSERT INTO worker_leases (name, owner, expires_at) VALUES (:name, :owner, :expires) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE worker_leases.owner = excluded.owner OR worker_leases.expires_at <= :now "
    "RETURNING owner"
).bindparams(
    sa.bindparam("name", type_=worker_leases.c.name.type),
    sa.bindparam("owner", type_=worker_leases.c.owner.type),
    sa.bindparam("expires", type_=worker_leases.c.expires_at.type),
    sa.bindparam("now", type_=worker_leases.c.expires_at.type),
)

ORDER_BY_ID = sa.select(orders).where(_o.order_id == _p("order_id", _o.order_id))

PIN_DECISION = (
    orders.update()
    .where(_o.order_id == _p("order_id", _o.order_id), _o.path.is_(None))
    .values(
        path=_p("path", _o.path),
        variant=_p("variant", _o.variant),
        rollout=_p("rollout", _o.rollout),
        flag_revision=_p("flag_revision", _o.flag_revision),
        decision_reason=_p("decision_reason", _o.decision_reason),
        updated_at=_p("now", _o.updated_at),
    )
    # What deciding whether the legacy app already ended the order needs (no SELECT).
    .returning(_o.legacy_status, _o.legacy_terminal_at, _o.terminal_at, _o.handoff)
)


@functools.cache
def move(status: OrderStatus, extra: tuple[str, ...] = ()) -> sa.Update:
    """Move an order forward to ``status`` (only from a status behind it).

    Parameters: ``order_id``, ``at`` (the status's time), ``now``, and one per name in
    ``extra`` (columns also set, such as ``outcome`` or ``handoff``).
    """
    behind = statuses_behind(status)
    timestamp = _TIMESTAMP_COLUMN[status]
    # OR of equalities rather than IN: a literal IN list is rendered anew on every call.
    return (
        orders.update()
        .where(
            _o.order_id == _p("order_id", _o.order_id),
            sa.or_(*(_o.status == value for value in behind)),
        )
        .values(
            status=status.value,
            updated_at=_p("now", _o.updated_at),
            **{timestamp: _p("at", orders.c[timestamp])},
            **{name: _p(name, orders.c[name]) for name in extra},
        )
    )


@functools.cache
def finish_held(status: OrderStatus) -> sa.Update:
    """End an order at terminal ``status`` and release its owner's lease as done, at once.

    :func:`move` and :data:`RELEASE_LEASE` in one statement, for the usual case where
    both apply (the order is behind ``status`` and ``owner`` holds its lease); it changes
    nothing otherwise, and the caller then runs them one by one. Parameters:
    ``order_id``, ``owner``, ``at`` (the terminal time), ``now``.
    """
    if not status.is_terminal:
        raise ValueError(f"finish_held() ends an order; {status} is not a terminal status")
    behind = statuses_behind(status)
    now = _p("now", _o.updated_at)
    return (
        orders.update()
        .where(
            _o.order_id == _p("order_id", _o.order_id),
            sa.or_(*(_o.status == value for value in behind)),
            _o.lease_owner == _p("owner", _o.lease_owner),
        )
        .values(
            status=status.value,
            outcome=status.value,
            updated_at=now,
            terminal_at=_p("at", _o.terminal_at),
            lease_owner=None,
            lease_expires_at=None,
            needs_dispatch=False,
            next_attempt_at=now,
        )
    )


_AT = _p("at", _o.routed_at)
# An order just routed moves straight on to ``running``: both statuses at ``at``, in one
# statement (parameters: ``order_id``, ``at``, ``now``). Only from ``received``.
ROUTE_AND_START = (
    orders.update()
    .where(
        _o.order_id == _p("order_id", _o.order_id),
        _o.status == OrderStatus.RECEIVED.value,
    )
    .values(
        status=OrderStatus.RUNNING.value,
        updated_at=_p("now", _o.updated_at),
        routed_at=_AT,
        running_at=_AT,
    )
)

# PIN_DECISION and ROUTE_AND_START in one statement, for an order still ``received``
# (the usual case); it changes nothing otherwise, and the caller runs them one by one.
_PIN_AND_START = (
    orders.update()
    .where(
        _o.order_id == _p("order_id", _o.order_id),
        _o.path.is_(None),
        _o.status == OrderStatus.RECEIVED.value,
    )
    .values(
        path=_p("path", _o.path),
        variant=_p("variant", _o.variant),
        rollout=_p("rollout", _o.rollout),
        flag_revision=_p("flag_revision", _o.flag_revision),
        decision_reason=_p("decision_reason", _o.decision_reason),
        status=OrderStatus.RUNNING.value,
        updated_at=_p("now", _o.updated_at),
        routed_at=_p("now", _o.routed_at),
        running_at=_p("now", _o.running_at),
    )
)
PIN_AND_START = _PIN_AND_START.returning(
    _o.legacy_status, _o.legacy_terminal_at, _o.terminal_at, _o.handoff
)
# PIN_AND_START for an order the batch jobs never had (``handoff`` NULL), returning
# nothing: an instant or dry-run path pinned on such an order is not followed, so its
# caller needs no more than the rowcount (SqlLedger._pin).
PIN_AND_START_UNHANDED = _PIN_AND_START.where(_o.handoff.is_(None))

SET_DRY_RUN_OUTCOME = (
    orders.update()
    .where(_o.order_id == _p("order_id", _o.order_id))
    .values(dry_run_outcome=_p("outcome", _o.dry_run_outcome), updated_at=_p("now", _o.updated_at))
)

_NOW = _p("now", _o.next_attempt_at)
_DUE = sa.and_(
    _o.needs_dispatch == sa.true(),
    _o.next_attempt_at <= _NOW,
    sa.or_(_o.lease_owner.is_(None), _o.lease_expires_at < _NOW),
)
_DUE_IDS = (
    sa.select(_o.order_id)
    .where(_DUE)
    .order_by(_o.next_attempt_at)
    .limit(sa.bindparam("p_limit", type_=sa.Integer))
)
_CLAIMED = {
    "lease_owner": _p("owner", _o.lease_owner),
    "lease_expires_at": _p("expires", _o.lease_expires_at),
    "attempts": _o.attempts + 1,
}
# A claim returns only what a LeasedOrder is built from (strangler.ledger.leases) and the
# due time claims are sorted by: the rest of the row (nine more timestamps, the source,
# the outcomes) is not sent or converted.
LEASED_COLUMNS = (
    _o.order_id,
    _o.notification,
    _o.status,
    _o.path,
    _o.variant,
    _o.rollout,
    _o.flag_revision,
    _o.decision_reason,
    _o.handoff,
    _o.attempts,
    _o.last_error,
    _o.lease_owner,
    _o.lease_expires_at,
    _o.next_attempt_at,
)
CLAIM_DUE = (
    orders.update()
    .where(
        _o.order_id.in_(_DUE_IDS.with_for_update(skip_locked=True).scalar_subquery()),
        # Checked again: on PostgreSQL another claimer may have won since the sub-select.
        _DUE,
    )
    .values(**_CLAIMED)
    .returning(*LEASED_COLUMNS)
)
# PostgreSQL: the claim alone in its transaction (autocommit: no BEGIN and COMMIT round
# trips), whose commit does not wait for its WAL flush (see SqlLedger.claim_due):
# set_config(..., true) is SET LOCAL inside the statement, evaluated once before the scan.
_UNFLUSHED = sa.select(sa.func.set_config("synchronous_commit", "off", sa.true()))
CLAIM_DUE_UNFLUSHED = CLAIM_DUE.where(_UNFLUSHED.scalar_subquery() == "off")
# SQLite: no check again. Its writers take turns (the claim runs in BEGIN IMMEDIATE), so
# the sub-select's orders are still due; and with the check, SQLite found the rows to
# update by walking every due order in ix_orders_due instead of by their keys (a claim
# cost 1.1 ms of CPU with 3,000 orders due, 0.2 ms without).
CLAIM_DUE_SQLITE = (
    orders.update()
    .where(_o.order_id.in_(_DUE_IDS.scalar_subquery()))
    .values(**_CLAIMED)
    .returning(*LEASED_COLUMNS)
)

RENEW_LEASES = (
    orders.update()
    .where(
        _o.order_id.in_(sa.bindparam("p_order_ids", expanding=True)),
        _o.lease_owner == _p("owner", _o.lease_owner),
    )
    .values(lease_expires_at=_p("expires", _o.lease_expires_at))
    .returning(_o.order_id)
)

RELEASE_LEASE = (
    orders.update()
    .where(
        _o.order_id == _p("order_id", _o.order_id),
        _o.lease_owner == _p("owner", _o.lease_owner),
    )
    .values(
        lease_owner=None,
        lease_expires_at=None,
        needs_dispatch=_p("needs_dispatch", _o.needs_dispatch),
        next_attempt_at=_p("retry_at", _o.next_attempt_at),
        updated_at=_p("now", _o.updated_at),
        last_error=sa.func.coalesce(_p("error", _o.last_error), _o.last_error),
    )
)

# A claim given back before any work: the lease goes and the claim's attempt is not counted.
RETURN_UNSTARTED = (
    orders.update()
    .where(
        _o.order_id.in_(sa.bindparam("p_order_ids", expanding=True)),
        _o.lease_owner == _p("owner", _o.lease_owner),
    )
    .values(lease_owner=None, lease_expires_at=None, attempts=_o.attempts - 1)
)

OPEN_ORDERS = sa.select(_o.order_id).where(
    _o.order_id.in_(sa.bindparam("p_order_ids", expanding=True)), _o.terminal_at.is_(None)
)

LEGACY_SEEN = (
    orders.update()
    .where(_o.order_id == _p("order_id", _o.order_id))
    .values(
        follow_checked_at=_p("now", _o.follow_checked_at),
        legacy_status=_p("legacy_status", _o.legacy_status),
        legacy_terminal_at=_p("legacy_terminal_at", _o.legacy_terminal_at),
    )
)

LEGACY_END = sa.select(_o.legacy_status, _o.legacy_terminal_at).where(
    _o.order_id == _p("order_id", _o.order_id), _o.terminal_at.is_(None), FOLLOWED
)
