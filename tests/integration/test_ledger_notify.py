"""LISTEN/NOTIFY on PostgreSQL: each new order's intake notifies every listening process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from strangler.ledger import SqlLedger, ledger_from_url, statements
from tests.helpers import wait_until
from tests.unit.ledger.support import make_order

pytestmark = pytest.mark.needs_postgres


class Counter:
    """Counts the calls a listener makes, and keeps the orders they name."""

    def __init__(self) -> None:
        self.count = 0
        self.order_ids: list[str | None] = []
        self._lock = threading.Lock()

    def __call__(self, order_id: str | None) -> None:
        with self._lock:
            self.count += 1
            self.order_ids.append(order_id)


@pytest.fixture
def ledgers(pg_url: str) -> Iterator[tuple[SqlLedger, SqlLedger]]:
    """Two ledgers on one database, as two sidecars on two hosts would open it."""
    first, second = ledger_from_url(pg_url), ledger_from_url(pg_url)
    yield first, second
    first.close()
    second.close()


def test_each_new_order_notifies_a_listener_on_another_connection(
    ledgers: tuple[SqlLedger, SqlLedger],
) -> None:
    """One call when listening starts (naming no order), one per new order naming it; a
    duplicate sends nothing."""
    routing, intake = ledgers
    heard = Counter()
    listener = routing.intake_listener(heard)
    assert listener is not None
    listener.start()
    try:
        wait_until(lambda: heard.count == 1, 10, "the call made once listening")
        assert intake.record_received(make_order("o-1"), source="test")
        wait_until(lambda: heard.count == 2, 10, "the first order's notification")
        assert not intake.record_received(make_order("o-1"), source="test")
        assert intake.record_received(make_order("o-2"), source="test")
        # Delivered in commit order: a notification of the duplicate would come before o-2's.
        wait_until(lambda: heard.count >= 3, 10, "the second order's notification")
        assert heard.count == 3
        assert heard.order_ids == [None, "o-1", "o-2"]
    finally:
        listener.stop()


def test_a_refused_notification_does_not_refuse_the_order(
    ledgers: tuple[SqlLedger, SqlLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full NOTIFY queue (SQLSTATE 54000) fails the notification, never the intake."""
    ledger, _ = ledgers
    full_queue = sa.text(
        "DO $$ BEGIN RAISE EXCEPTION 'too many notifications in the NOTIFY queue' "
        "USING ERRCODE = '54000'; END $$"
    )
    monkeypatch.setattr(statements, "INSERT_ORDER_NOTIFYING", full_queue)
    assert ledger.record_received(make_order("o-1"), source="test")
    assert ledger.known_orders(["o-1"]) == {"o-1"}


def test_no_listener_on_sqlite() -> None:
    """SQLite has no LISTEN/NOTIFY: routing processes there are woken by sockets."""
    ledger = ledger_from_url("sqlite://")
    try:
        assert ledger.intake_listener(lambda _order_id: None) is None
    finally:
        ledger.close()
