"""The alerting figures on SQLite, the default database; a scrape never waits on a writer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from strangler.ledger import ledger_from_url
from tests.unit.ledger.ops_contract import OpsFiguresContract


class TestSqliteOpsFigures(OpsFiguresContract):
    """Every alerting figure, on a SQLite file."""

    @pytest.fixture
    def ledger_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


def test_figures_are_read_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """A write transaction left open elsewhere does not delay the scrape (WAL snapshot read)."""
    path = tmp_path / "ledger.sqlite3"
    ledger = ledger_from_url(f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO kv (name, value, updated_at) VALUES ('w', 'v', '2030-01-01')")
        started = time.monotonic()
        figures = ledger.ops_figures()
        waited = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        ledger.close()

    assert (figures.unrouted.orders, waited < 1.0) == (0, True)
