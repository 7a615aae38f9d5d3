"""The ledger contract on SQLite, the default database."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.ledger import ledger_from_url
from tests.unit.ledger.contract import LedgerContract


class TestSqliteLedger(LedgerContract):
    """Every ledger behaviour, on a SQLite file."""

    @pytest.fixture
    def ledger_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


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
