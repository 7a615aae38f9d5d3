"""The processing-time histogram, kept by the database as orders end.

A trigger on ``orders`` adds each order, in the transaction that makes it terminal
(``terminal_at`` set on insert, or going from NULL to a value), to its (path, outcome,
bucket) row of ``order_durations``: one count and its seconds to terminal. A trigger
catches every path that ends an order (an instant finish, PostgreSQL's one-statement
finish, a transition, a hand-off, the follower's legacy ends, an adoption, a synthetic
fill), including ones written later, with the same seconds as the report
(strangler.ledger.durations computes them, here in the trigger's SQL). Nothing takes a
count back: archiving old orders leaves the histogram as it was, so Prometheus sees
counters that never fall. A scrape reads a few dozen rows.

On PostgreSQL each backend adds to its own shard of rows (``pg_backend_pid() % SHARDS``),
so that concurrent finishes of the same bucket do not queue on one row lock until commit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from strangler.ledger.durations import ORDER_BUCKETS_S, seconds_between, seconds_to_terminal
from strangler.ledger.records import DurationBuckets
from strangler.ledger.schema import order_durations, orders

__all__ = ["SHARDS", "backfill", "histogram", "install_triggers"]

#: Rows per (path, outcome, bucket) on PostgreSQL, one per group of backends.
SHARDS = 8

_UNROUTED = "undecided"
_TRIGGERS = ("orders_tally_insert", "orders_tally_end")
_PG_FUNCTION = "strangler_tally_order_duration"
_ENDED_ON_INSERT = "NEW.terminal_at IS NOT NULL"
_ENDED_ON_UPDATE = "OLD.terminal_at IS NULL AND NEW.terminal_at IS NOT NULL"


def bucket_of(seconds: Any) -> sa.Case[int]:
    """The index of the first bound of ORDER_BUCKETS_S at least ``seconds`` (its length above)."""
    return sa.case(
        *((seconds <= bound, index) for index, bound in enumerate(ORDER_BUCKETS_S)),
        else_=len(ORDER_BUCKETS_S),
    )


def _literal(dialect: sa.Dialect, expression: sa.ColumnElement[Any]) -> str:
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _new_row_seconds(dialect: sa.Dialect) -> str:
    """The trigger's ``NEW`` row's seconds to terminal, as durations.seconds_between has it."""
    received = sa.literal_column("NEW.received_at", type_=orders.c.received_at.type)
    terminal = sa.literal_column("NEW.terminal_at", type_=orders.c.terminal_at.type)
    return _literal(dialect, seconds_between(dialect.name, received, terminal))


def _bucket_sql(dialect: sa.Dialect) -> str:
    return _literal(dialect, bucket_of(sa.literal_column("s", type_=sa.Float)))


def install_triggers(conn: sa.Connection) -> None:
    """Create (or replace) the triggers that add each ending order to ``order_durations``."""
    if conn.dialect.name == "sqlite":
        _install_sqlite(conn)
    else:
        _install_postgresql(conn)


def _install_sqlite(conn: sa.Connection) -> None:
    # "WHERE true" lets SQLite parse ON CONFLICT after INSERT ... SELECT (its documented quirk).
    # The SQL put in these statements comes from the code (compiled expressions), never input.
    add = (
        "INSERT INTO order_durations (path, outcome, bucket, shard, n, total_s)"  # noqa: S608
        f" SELECT coalesce(NEW.path, '{_UNROUTED}'), NEW.status, {_bucket_sql(conn.dialect)},"
        f" 0, 1, s FROM (SELECT {_new_row_seconds(conn.dialect)} AS s) WHERE true"
        " ON CONFLICT (path, outcome, bucket, shard)"
        " DO UPDATE SET n = n + 1, total_s = total_s + excluded.total_s;"
    )
    insert, end = _TRIGGERS
    conn.execute(
        sa.text(
            f"CREATE TRIGGER IF NOT EXISTS {insert} AFTER INSERT ON orders"
            f" WHEN {_ENDED_ON_INSERT} BEGIN {add} END"
        )
    )
    conn.execute(
        sa.text(
            f"CREATE TRIGGER IF NOT EXISTS {end} AFTER UPDATE OF terminal_at ON orders"
            f" WHEN {_ENDED_ON_UPDATE} BEGIN {add} END"
        )
    )


def _install_postgresql(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$"  # noqa: S608
            " DECLARE s double precision; BEGIN"
            f" s := {_new_row_seconds(conn.dialect)};"
            " INSERT INTO order_durations (path, outcome, bucket, shard, n, total_s)"
            f" VALUES (coalesce(NEW.path, '{_UNROUTED}'), NEW.status, {_bucket_sql(conn.dialect)},"
            f" pg_backend_pid() % {SHARDS}, 1, s)"
            " ON CONFLICT (path, outcome, bucket, shard) DO UPDATE"
            " SET n = order_durations.n + 1, total_s = order_durations.total_s + excluded.total_s;"
            " RETURN NULL; END $$"
        )
    )
    insert, end = _TRIGGERS
    for name, event, when in (
        (insert, "INSERT", _ENDED_ON_INSERT),
        (end, "UPDATE OF terminal_at", _ENDED_ON_UPDATE),
    ):
        conn.execute(
            sa.text(
                f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON orders FOR EACH ROW"
                f" WHEN ({when}) EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        )


def backfill(conn: sa.Connection) -> None:
    """Add the terminal orders present to ``order_durations`` (once, when it is created)."""
    seconds = seconds_to_terminal(conn.dialect.name).label("s")
    ended = (
        sa.select(
            sa.func.coalesce(orders.c.path, _UNROUTED).label("path"),
            orders.c.status.label("outcome"),
            seconds,
        )
        .where(orders.c.terminal_at.is_not(None))
        .subquery()
    )
    bucket = bucket_of(ended.c.s)
    grouped = sa.select(
        ended.c.path,
        ended.c.outcome,
        bucket,
        sa.literal(0),
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(ended.c.s), 0.0),
    ).group_by(ended.c.path, ended.c.outcome, bucket)
    conn.execute(
        order_durations.insert().from_select(
            ["path", "outcome", "bucket", "shard", "n", "total_s"], grouped
        )
    )


def histogram(conn: sa.Connection) -> list[DurationBuckets]:
    """Every order ever ended, per (path, outcome), in ORDER_BUCKETS_S (cumulative)."""
    t = order_durations.c
    rows = conn.execute(
        sa.select(t.path, t.outcome, t.bucket, sa.func.sum(t.n), sa.func.sum(t.total_s))
        .group_by(t.path, t.outcome, t.bucket)
        .order_by(t.path, t.outcome, t.bucket)
    ).all()
    per_label: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
    for path, outcome, bucket, n, total_s in rows:
        counts, totals = per_label.setdefault(
            (path, outcome), ([0] * (len(ORDER_BUCKETS_S) + 1), [])
        )
        counts[int(bucket)] += int(n)
        totals.append(float(total_s))
    result = []
    for (path, outcome), (counts, totals) in per_label.items():
        cumulative = [sum(counts[: index + 1]) for index in range(len(ORDER_BUCKETS_S))]
        result.append(
            DurationBuckets(
                path=path,
                outcome=outcome,
                count=sum(counts),
                total_s=sum(totals),
                at_most=tuple(cumulative),
            )
        )
    return result
