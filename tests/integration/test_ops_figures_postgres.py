"""The alerting figures /metrics reads, on PostgreSQL, the database sidecars share."""

from __future__ import annotations

import pytest

from tests.unit.ledger.ops_contract import OpsFiguresContract

pytestmark = pytest.mark.needs_postgres


class TestPostgresOpsFigures(OpsFiguresContract):
    """Every alerting figure, on the local PostgreSQL server."""

    @pytest.fixture
    def ledger_url(self, pg_url: str) -> str:
        return pg_url
