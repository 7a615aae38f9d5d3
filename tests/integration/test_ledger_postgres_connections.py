"""The PostgreSQL ledger's connections: few round trips per write, dead ones replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderStatus, Route
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


def test_a_claim_is_one_statement_committed_without_a_flush_wait(ledger: SqlLedger) -> None:
    """The claim commits on its own (no BEGIN or COMMIT round trips), with
    synchronous_commit off for its own transaction only: the pooled session keeps it on."""
    statements: list[tuple[str, dict[str, object]]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        statements.append((statement, parameters))

    ledger.record_received(make_order("o-1"), source="test")
    sa.event.listen(ledger.engine, "before_cursor_execute", seen)
    try:
        claimed = ledger.claim_due("worker-1", limit=10, lease_seconds=30)
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", seen)
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
    assert [statement.split()[0] for statement in sent] == ["WITH", "WITH"]
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
