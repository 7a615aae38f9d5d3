"""The readiness probe finds a ledger that would refuse every write, without writing to it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from tests.unit.ledger.support import make_order


@pytest.mark.needs_postgres
def test_a_postgres_database_set_read_only_fails_the_probe(pg_url: str) -> None:
    """default_transaction_read_only on: the probe says so, as a write would fail; off: ok."""
    ledger = ledger_from_url(pg_url)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    database = sa.make_url(pg_url).database

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text("SET default_transaction_read_only = off"))  # this session
            conn.execute(
                sa.text(
                    f'ALTER DATABASE "{database}" SET default_transaction_read_only = '
                    f"{'on' if on else 'off'}"
                )
            )
        ledger.engine.dispose()  # new sessions take the database's setting

    try:
        ledger.probe()
        read_only(True)
        with pytest.raises(LedgerError, match="could not take writes: default_transaction_read"):
            ledger.probe()
        with pytest.raises(LedgerError, match="read-only transaction"):
            ledger.record_received(make_order("o-refused"), source="test")
        read_only(False)
        ledger.probe()
        assert ledger.record_received(make_order("o-taken"), source="test")
    finally:
        ledger.close()
        admin.dispose()


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder, and the same folder bind-mounted read-only (skips where mounting is denied)."""
    folder, view = tmp_path / "ledger", tmp_path / "view"
    folder.mkdir()
    view.mkdir()
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(view)],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder read-only here (needs root): {mounted.stderr}")
    try:
        yield folder, view
    finally:
        subprocess.run(["umount", str(view)], check=True, timeout=10)


def test_a_sqlite_ledger_on_a_read_only_file_system_fails_the_probe(
    read_only_view: tuple[Path, Path],
) -> None:
    """The probe reads the mount's read-only flag: the same file through a read-only view fails."""
    folder, view = read_only_view
    writable = ledger_from_url(f"sqlite:///{folder / 'ledger.sqlite3'}")
    try:
        writable.probe()
        through_view = sa.create_engine(f"sqlite:///{view / 'ledger.sqlite3'}")
        try:
            with pytest.raises(LedgerError, match="on a read-only file system"):
                SqlLedger(through_view).probe()
        finally:
            through_view.dispose()
    finally:
        writable.close()
