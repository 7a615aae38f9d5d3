"""The comparison store and schema migration on PostgreSQL, the database sidecars share."""

from __future__ import annotations

import pytest

from tests.unit.ledger.comparisons_contract import ComparisonStoreContract

pytestmark = pytest.mark.needs_postgres


class TestPostgresComparisons(ComparisonStoreContract):
    """Every comparison-store behaviour, on the local PostgreSQL server."""

    @pytest.fixture
    def ledger_url(self, pg_url: str) -> str:
        return pg_url
