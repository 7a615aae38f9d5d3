"""The comparison store and schema migration on SQLite, the default database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ledger.comparisons_contract import ComparisonStoreContract


class TestSqliteComparisons(ComparisonStoreContract):
    """Every comparison-store behaviour, on a SQLite file."""

    @pytest.fixture
    def ledger_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
