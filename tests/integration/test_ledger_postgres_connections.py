"""The PostgreSQL ledger's connections: few round trips per write, dead ones replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url, schema, statements
from strangler.ledger import engine as engine_module
from strangler.orders import OrderNotification, OrderStatus, Route
from tests.helpers import wait_until
from tests.unit.ledger.support import T0, make_decision, make_order, make_step

pytestmark = pytest.mark.needs_postgres


@pytest.fixture
def ledger(pg_url: str) -> Iterator[SqlLedger]:
    opened = ledger_from_url(pg_url)
    yield opened
    opened.close()


def _terminate_other_backends(pg_url: str) -> None:
    """Close every other session on this database from the server side, and wait for it."""
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) {others}"))
            wait_until(
                lambda: conn.execute(sa.text(f"SELECT pid {others}")).first() is None,
                10,
                "the terminated sessions to end",
            )
    finally:
        admin.dispose()


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(
    ledger: SqlLedger, pg_url: str
) -> None:
    """After the server ends the ledger's sessions (a restart, pg_terminate_backend), the
    next intake and claim succeed at their first try, on fresh connections."""
    assert ledger.record_received(make_order("o-1"), source="test")
    _terminate_other_backends(pg_url)
    assert ledger.record_received(make_order("o-2"), source="test")
    claimed = ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    assert sorted(order.order_id for order in claimed) == ["o-1", "o-2"]


def test_intake_is_one_statement_without_a_transaction_of_its_own(ledger: SqlLedger) -> None:
    """The intake's INSERT (and its NOTIFY) commit on their own: SQLAlchemy sends no
    COMMIT (the statement and the flush wait are a round trip each)."""
    commits: list[object] = []

    def count(conn: sa.Connection) -> None:
        commits.append(conn)

    sa.event.listen(ledger.engine, "commit", count)
    try:
        assert ledger.record_received(make_order("o-1"), source="test")
        assert not ledger.record_received(make_order("o-1"), source="test")
    finally:
        sa.event.remove(ledger.engine, "commit", count)
    assert commits == []
    other = ledger_from_url(ledger.engine.url.render_as_string(hide_password=False))
    try:
        assert other.known_orders(["o-1"]) == {"o-1"}
    finally:
        other.close()


def test_a_claim_is_one_statement_committed_without_a_flush_wait(
    ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim commits on its own (no BEGIN or COMMIT round trips), with
    synchronous_commit off for its own transaction only: the pooled session keeps it on.
    Watched at the driver, as the claim runs on psycopg's connection directly."""
    statements: list[tuple[str, dict[str, object]]] = []
    execute = psycopg.Cursor.execute

    def seen(cursor: psycopg.Cursor[Any], query: Any, params: Any = None, **options: Any) -> Any:
        statements.append((str(query), params))
        return execute(cursor, query, params, **options)

    ledger.record_received(make_order("o-1"), source="test")
    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Cursor, "execute", seen)
        claimed = ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    assert [order.order_id for order in claimed] == ["o-1"]
    assert len(statements) == 1
    statement, parameters = statements[0]
    assert statement.startswith("UPDATE orders")
    assert "set_config(" in statement
    assert {"synchronous_commit", "off"} <= set(parameters.values())
    assert ledger.claim_due("worker-2", limit=10, lease_seconds=30) == []
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"


def test_the_usual_pin_and_finish_are_one_durable_statement_each(ledger: SqlLedger) -> None:
    """An instant order's pin (with its start) and its finish (steps, end, lease) are one
    autocommitted statement each: no BEGIN or COMMIT, and no synchronous_commit change,
    so each is flushed to disk before it returns."""
    ledger.record_received(make_order("o-1"), source="test")
    ledger.claim_due("worker-1", limit=1, lease_seconds=30)
    sent: list[str] = []
    commits: list[object] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    def committed(conn: sa.Connection) -> None:
        commits.append(conn)

    sa.event.listen(ledger.engine, "before_cursor_execute", seen)
    sa.event.listen(ledger.engine, "commit", committed)
    try:
        decision = make_decision(Route.INSTANT)
        assert ledger.pin_decision("o-1", decision, start_running=True) is decision
        steps = [(make_step("o-1", name), 0) for name in ("claim", "fraud_scan", "fulfill")]
        assert ledger.finish("o-1", OrderStatus.FULFILLED, steps, at=T0, release_owner="worker-1")
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", seen)
        sa.event.remove(ledger.engine, "commit", committed)
    assert [statement.split()[0] for statement in sent] == ["UPDATE", "WITH"]
    assert not any("set_config" in statement for statement in sent)
    assert commits == []
    story = ledger.story("o-1")
    assert story is not None
    assert story["status"] == "fulfilled"
    assert len(story["steps"]) == 3


def test_an_order_is_visible_before_its_flush_and_durable_on_return(
    ledger: SqlLedger, pg_url: str
) -> None:
    """The intake's INSERT commits without waiting for its WAL flush (routing sees it at
    once); record_received returns only once the WAL is flushed past that commit."""
    sent: list[str] = []
    inserted_by: list[int] = []
    probe = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def after(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)
        if statement.startswith("WITH inserted AS"):
            # Past the intake's commit record: its end is at or before this position.
            with probe.connect() as conn:
                lsn = conn.execute(sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'"))
                inserted_by.append(int(lsn.scalar_one()))

    sa.event.listen(ledger.engine, "after_cursor_execute", after)
    try:
        assert ledger.record_received(make_order("o-1"), source="test")
        with probe.connect() as conn:
            flushed = conn.execute(sa.text("SELECT pg_current_wal_flush_lsn() - '0/0'"))
            flushed_to = int(flushed.scalar_one())
    finally:
        sa.event.remove(ledger.engine, "after_cursor_execute", after)
        probe.dispose()
    assert len(sent) == 2
    assert "set_config('synchronous_commit', 'off', true)" in sent[0]
    assert "set_config" not in sent[1]
    assert flushed_to >= inserted_by[0]


def _as_read(value: object) -> tuple[object, type, object]:
    """A value with its type and (for a datetime) its time zone, to compare exactly."""
    return (value, type(value), getattr(value, "tzinfo", None))


def test_a_claim_reads_its_rows_as_sqlalchemy_would(ledger: SqlLedger) -> None:
    """The claim runs on psycopg's connection, yet each claimed order's values (UTC-aware
    datetimes, the notification as a mapping, a pinned decision, the last error, the
    attempts counted) are what SQLAlchemy reads from the same row."""
    ledger.record_received(make_order("o-1", amount_cents=1250), source="test")
    ledger.record_received(make_order("o-2"), source="test")
    [first] = ledger.claim_due("worker-1", limit=1, lease_seconds=30)
    ledger.pin_decision(first.order_id, make_decision(Route.SHADOW))
    ledger.release_lease(first.order_id, "worker-1", done=False, error="the gateway was down")
    claimed = {o.order_id: o for o in ledger.claim_due("worker-2", limit=5, lease_seconds=30)}
    assert sorted(claimed) == ["o-1", "o-2"]
    retried = claimed[first.order_id]
    assert (retried.attempts, retried.last_error) == (2, "the gateway was down")
    assert retried.decision == make_decision(Route.SHADOW)
    assert retried.notification == make_order(first.order_id, amount_cents=1250)
    columns = statements.LEASED_COLUMNS
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(schema.orders.c.order_id)).all()
    assert [row.order_id for row in rows] == ["o-1", "o-2"]
    for row in rows:
        leased = claimed[row.order_id]
        assert [
            _as_read(value)
            for value in (
                leased.lease_expires_at,
                leased.lease_owner,
                leased.attempts,
                leased.last_error,
                leased.status.value,
                leased.handoff,
            )
        ] == [
            _as_read(value)
            for value in (
                row.lease_expires_at,
                row.lease_owner,
                row.attempts,
                row.last_error,
                row.status,
                row.handoff,
            )
        ]
        assert leased.notification == OrderNotification.from_dict(row.notification)


def test_a_claim_on_a_connection_lost_mid_way_is_a_ledger_error_and_the_next_claim_works(
    ledger: SqlLedger, pg_url: str
) -> None:
    """A claim whose connection the server closed (found only when the statement is sent:
    the checkout's look is off here) fails as a LedgerError naming the claim; the
    connection is dropped from the pool, so the next claim connects afresh and succeeds."""
    assert ledger.record_received(make_order("o-1"), source="test")
    sa.event.remove(ledger.engine, "checkout", engine_module._refuse_if_closed_by_server)
    try:
        _terminate_other_backends(pg_url)
        with pytest.raises(LedgerError, match="could not claim due orders"):
            ledger.claim_due("worker-1", limit=10, lease_seconds=30)
        claimed = ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    finally:
        sa.event.listen(ledger.engine, "checkout", engine_module._refuse_if_closed_by_server)
    assert [order.order_id for order in claimed] == ["o-1"]


def test_a_driver_error_in_a_claim_is_a_ledger_error(ledger: SqlLedger) -> None:
    """A claim the database refuses (here: its table renamed away) fails as a LedgerError
    naming the claim and the server's error; once the table is back, claims work on the
    same pooled connections."""
    assert ledger.record_received(make_order("o-1"), source="test")
    with ledger.engine.connect() as conn, conn.begin():
        conn.execute(sa.text("ALTER TABLE orders RENAME TO orders_away"))
    try:
        with pytest.raises(LedgerError, match="UndefinedTable"):
            ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    finally:
        with ledger.engine.connect() as conn, conn.begin():
            conn.execute(sa.text("ALTER TABLE orders_away RENAME TO orders"))
    claimed = ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    assert [order.order_id for order in claimed] == ["o-1"]
