"""The ledger contract on SQLite, the default database."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.ledger.engine import create_ledger_engine
from tests.unit.ledger.contract import LedgerContract
from tests.unit.ledger.support import make_order

BUSY_S = 1.0


class TestSqliteLedger(LedgerContract):
    """Every ledger behaviour, on a SQLite file."""

    @pytest.fixture
    def ledger_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


def test_a_write_waits_at_most_one_busy_timeout(tmp_path: Path) -> None:
    """With the file locked elsewhere, each of two writers gives up after one busy timeout.

    Before, the second writer queued behind the first for its whole busy timeout and then
    waited its own: twice as long.
    """
    path = tmp_path / "ledger.sqlite3"
    ledger = SqlLedger(create_ledger_engine(f"sqlite:///{path}"), busy_timeout_s=BUSY_S)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    waited: list[float] = []

    def write(order_id: str) -> None:
        started = time.monotonic()
        with pytest.raises(LedgerError, match="could not record a received order"):
            ledger.record_received(make_order(order_id), source="test")
        waited.append(time.monotonic() - started)

    try:
        writers = [threading.Thread(target=write, args=(f"o-{n}",)) for n in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        ledger.close()
    assert len(waited) == 2
    assert max(waited) < BUSY_S * 1.6, waited


def test_sqlite_file_names_the_database_file(tmp_path: Path) -> None:
    """A file ledger names its file (the wake-up sockets go beside it); memory has none."""
    on_file = ledger_from_url(f"sqlite:///{tmp_path}/orders.sqlite3")
    in_memory = ledger_from_url("sqlite://")
    try:
        assert (on_file.sqlite_file, in_memory.sqlite_file) == (
            (tmp_path / "orders.sqlite3").resolve(),
            None,
        )
    finally:
        on_file.close()
        in_memory.close()
