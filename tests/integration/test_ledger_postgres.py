"""The ledger contract on PostgreSQL, the database several sidecars share."""

from __future__ import annotations

import pytest

from tests.unit.ledger.contract import LedgerContract

pytestmark = pytest.mark.needs_postgres


class TestPostgresLedger(LedgerContract):
    """Every ledger behaviour, on the local PostgreSQL server."""

    @pytest.fixture
    def ledger_url(self, pg_url: str) -> str:
        return pg_url
