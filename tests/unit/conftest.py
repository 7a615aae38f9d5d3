"""Fixtures shared by the unit suites: a fake clock and a SQLite ledger on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.ledger import SqlLedger, ledger_from_url
from tests.unit.ledger.support import Clock


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[SqlLedger]:
    """A fresh SQLite ledger in tmp_path, on the fake clock."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock=clock)
    yield ledger
    ledger.close()
