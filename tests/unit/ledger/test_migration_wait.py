"""A process starting while another migrates a SQLite ledger waits for it, past the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from strangler.ledger import engine as ledger_engine
from strangler.ledger import ledger_from_url, migrate
from strangler.ledger.schema import SCHEMA_VERSION


def test_a_start_waits_for_a_migration_longer_than_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write lock is held 4 busy timeouts (another process's long migration step)."""
    monkeypatch.setattr(ledger_engine, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(migrate, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "ledger.sqlite3"
    ledger_from_url(f"sqlite:///{path}").close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.4, other.execute, ["COMMIT"])
    released.start()
    try:
        ledger = ledger_from_url(f"sqlite:///{path}")
        assert not released.is_alive()  # it did wait for the lock
        assert ledger.schema_version == SCHEMA_VERSION
        ledger.close()
    finally:
        released.join()
        other.close()
