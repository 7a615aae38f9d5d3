"""The ledger contract on SQLite, the default database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ledger.contract import LedgerContract


class TestSqliteLedger(LedgerContract):
    """Every ledger behaviour, on a SQLite file."""

    @pytest.fixture
    def ledger_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
