"""Fixtures shared by the unit suites: a fake clock and a ledger on it.

The ledger is SQLite; a module that sets ``BOTH_DATABASES = True`` gets every test that
uses it run on PostgreSQL too (marked ``needs_postgres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.ledger import SqlLedger, ledger_from_url
from tests.unit.ledger.support import Clock

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.needs_postgres)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a ``BOTH_DATABASES`` module's ledger tests on each database the ledger supports."""
    both = getattr(metafunc.module, "BOTH_DATABASES", False)
    if both and "ledger_url" in metafunc.fixturenames:
        metafunc.parametrize("ledger_url", DATABASES, indirect=True)


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger's URL: SQLite in tmp_path, or the test's PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Iterator[SqlLedger]:
    """A fresh ledger at ``ledger_url``, on the fake clock."""
    ledger = ledger_from_url(ledger_url, clock=clock)
    yield ledger
    ledger.close()
