"""The SQLite intake INSERT on the driver connection stores what SQLAlchemy would."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.ledger.driver_insert import DriverInsert
from strangler.ledger.schema import orders
from strangler.ledger.statements import ORDER_COLUMNS
from tests.unit.ledger.support import make_order


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A SQLite ledger in a temporary file."""
    opened = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def _row(path: Path, order_id: str) -> tuple[str, ...]:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return tuple(row)


def test_driver_row_equals_the_sqlalchemy_row(ledger: SqlLedger, tmp_path: Path) -> None:
    """The same order written both ways is stored identically (times, JSON, booleans)."""
    fixed = ledger._clock()
    ledger._clock = lambda: fixed  # one instant for both rows
    ledger.record_received(make_order("a", user_guid="u", city="nyc"), source="s")
    ledger._insert_order = None  # the SQLAlchemy path
    ledger.record_received(make_order("b", user_guid="u", city="nyc"), source="s")
    driver, through_sa = (_row(tmp_path / "ledger.sqlite3", o) for o in ("a", "b"))
    assert (driver[1].replace('"a"', '"b"'), *driver[2:]) == through_sa[1:]
    assert (ledger.story("a") or {})["status"] == "received"


def test_duplicate_changes_nothing(ledger: SqlLedger) -> None:
    """A second insert of one order_id reports a duplicate and keeps the first row."""
    first = ledger.record_received(make_order("o-1", unit_id="first"), source="a")
    second = ledger.record_received(make_order("o-1", unit_id="second"), source="b")
    story = ledger.story("o-1") or {}
    assert (first, second, story["notification"]["unit_id"]) == (True, False, "first")


def test_driver_error_is_a_ledger_error_and_the_next_call_reconnects(
    ledger: SqlLedger, tmp_path: Path
) -> None:
    """A failing INSERT raises LedgerError naming the operation; later calls work again."""
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    with pytest.raises(LedgerError, match="could not record a received order"):
        ledger.record_received(make_order("o-1"), source="s")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute("DROP TRIGGER refuse")
    assert ledger.record_received(make_order("o-1"), source="s") is True


def test_refuses_other_databases() -> None:
    """DriverInsert is for SQLite only and says so."""
    engine = pytest.importorskip("sqlalchemy").create_engine("postgresql+psycopg://u@h/db")
    with pytest.raises(ValueError, match="SQLite only"):
        DriverInsert(engine, orders, ORDER_COLUMNS, key=("order_id",))


def test_waits_for_another_process_lock_then_inserts(ledger: SqlLedger, tmp_path: Path) -> None:
    """While another connection holds the write lock the INSERT retries, then succeeds."""
    other = sqlite3.connect(
        tmp_path / "ledger.sqlite3", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.05, other.execute, args=("COMMIT",))
    timer.start()
    try:
        assert ledger.record_received(make_order("o-1"), source="s") is True
    finally:
        timer.join()
        other.close()


def test_a_lock_held_past_the_busy_timeout_is_a_driver_error(
    ledger: SqlLedger, tmp_path: Path
) -> None:
    """A lock that outlasts the busy timeout ends the wait with SQLITE_BUSY."""
    insert = DriverInsert(
        ledger.engine, orders, ORDER_COLUMNS, key=("order_id",), busy_timeout_s=0.01
    )
    other = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    row = dict.fromkeys(ORDER_COLUMNS)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            insert.execute(row)
    finally:
        other.execute("ROLLBACK")
        other.close()
        insert.close()
