"""Ledger URLs and the SQLite engine's settings."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.exceptions import ConfigurationError, LedgerError
from strangler.ledger import ledger_from_url
from strangler.ledger.engine import (
    create_ledger_engine,
    display_url,
    enter_wal,
    normalize_url,
)
from strangler.ledger.schema import UTCDateTime
from tests.unit.ledger.support import make_order


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p@db/ledger", "postgresql+psycopg"),
        ("postgres://u:p@db/ledger", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db/ledger", "postgresql+psycopg"),
        ("sqlite:///ledger.sqlite3", "sqlite"),
    ],
    ids=["postgresql", "postgres-alias", "psycopg", "sqlite"],
)
def test_urls_get_a_supported_driver(url: str, driver: str) -> None:
    """PostgreSQL URLs without a driver get psycopg 3; SQLite URLs are kept."""
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize(
    "url", ["mysql://u:p@db/ledger", "not a url"], ids=["other-database", "malformed"]
)
def test_unsupported_urls_are_refused(url: str) -> None:
    """A URL for another database, or no URL at all, is a configuration error naming it."""
    with pytest.raises(ConfigurationError, match="STRANGLER_LEDGER_URL"):
        normalize_url(url)


def test_passwords_are_hidden_in_displayed_urls() -> None:
    """The URL shown in messages and logs hides the password."""
    shown = display_url(normalize_url("postgresql://ledger:s3cret@db/ledger"))
    assert "s3cret" not in shown
    assert shown.startswith("postgresql+psycopg://ledger:")


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    """A SQLite ledger file is in WAL mode, synchronous NORMAL, with a busy timeout, and
    its writers checkpoint the WAL only past a 100,000-page backstop (a background
    checkpointer does it long before)."""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'deep' / 'ledger.sqlite3'}")
    try:
        with engine.connect() as conn:
            settings = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in (
                    "journal_mode",
                    "synchronous",
                    "busy_timeout",
                    "foreign_keys",
                    "wal_autocheckpoint",
                )
            ]
    finally:
        engine.dispose()
    assert settings == ["wal", 1, 5000, 1, 100_000]


class BusyCursor:
    """A cursor whose first ``busy`` PRAGMAs are answered as SQLite answers a second
    process switching a new file to WAL at once: SQLITE_BUSY, without a busy wait."""

    def __init__(self, busy: int, error: int = sqlite3.SQLITE_BUSY) -> None:
        self.busy = busy
        self.error = error
        self.calls = 0
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.calls += 1
        self.statements.append(sql)
        if self.calls <= self.busy:
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = self.error
            raise exc


def test_a_busy_switch_to_wal_is_tried_again() -> None:
    cursor = BusyCursor(busy=3)
    enter_wal(cursor, timeout_s=5)
    assert cursor.statements == ["PRAGMA journal_mode = WAL"] * 4


def test_a_switch_to_wal_busy_past_the_timeout_fails() -> None:
    cursor = BusyCursor(busy=10_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enter_wal(cursor, timeout_s=0.05)
    # Tried again (more than once), paced every 10 ms (at most once at 0 ms and five more
    # by 50 ms), not spinning.
    assert 2 <= cursor.calls <= 6


def test_another_error_of_the_switch_to_wal_is_not_tried_again() -> None:
    cursor = BusyCursor(busy=1, error=sqlite3.SQLITE_IOERR)
    with pytest.raises(sqlite3.OperationalError):
        enter_wal(cursor, timeout_s=5)
    assert cursor.calls == 1


def _open_new_ledger(
    url: str, start: threading.Barrier, errors: multiprocessing.Queue[str | None]
) -> None:
    start.wait()
    try:
        ledger_from_url(url).close()
    except Exception as exc:  # reported to the test, which names it
        errors.put(repr(exc))
    else:
        errors.put(None)


def test_processes_opening_a_new_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    """Four processes opening one new SQLite ledger at the same moment all get it, schema
    and WAL mode included: before, one in 10-20 such starts had a process fail with
    "database is locked" (a routing child of ``serve --routing-processes 2`` died of it)."""
    context = multiprocessing.get_context("fork")
    errors = []
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'ledger-{round_}.sqlite3'}"
        start, answers = context.Barrier(4), context.Queue()
        processes = [
            context.Process(target=_open_new_ledger, args=(url, start, answers)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        errors += [answers.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(60)
    assert [error for error in errors if error is not None] == []


def test_an_in_memory_ledger_serves_several_threads() -> None:
    """``sqlite://`` gives a working in-memory ledger that several threads may use."""
    ledger = ledger_from_url("sqlite://")
    threads = [
        threading.Thread(
            target=ledger.record_received, args=(make_order(f"o-{n}"),), kwargs={"source": "api"}
        )
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert ledger.counts().total == 8
    ledger.close()


def test_naive_datetimes_are_refused() -> None:
    """The ledger stores aware datetimes only; a naive one is a programming error."""
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2030, 1, 1), sa.create_engine("sqlite://").dialect)


def test_a_postgresql_url_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, a PostgreSQL URL is a ConfigurationError naming the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an absent package looks like
    with pytest.raises(ConfigurationError, match=r"pip install 'strangler\[postgres\]'") as info:
        ledger_from_url("postgresql://u:secret@db.invalid/ledger")
    assert ("secret" not in str(info.value), type(info.value.__cause__)) == (
        True,
        ModuleNotFoundError,
    )


def test_a_ledger_error_carries_the_operation_and_the_url_without_its_password() -> None:
    """An unreachable PostgreSQL ledger raises LedgerError naming what it did, password hidden."""
    with pytest.raises(LedgerError) as info:
        ledger_from_url("postgresql://strangler:secret@127.0.0.1:1/ledger")
    error = info.value
    assert (error.operation, error.url) == (
        "migrate the schema",
        "postgresql+psycopg://strangler:***@127.0.0.1:1/ledger",
    )
    assert str(error).startswith(
        "ledger postgresql+psycopg://strangler:***@127.0.0.1:1/ledger: "
        "could not migrate the schema: OperationalError: "
    )
    assert "secret" not in str(error)
    assert isinstance(error.__cause__, sa.exc.OperationalError)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "disk full"),
        ({"operation": "record a step"}, "could not record a step: disk full"),
        (
            {"operation": "record a step", "url": "sqlite:///x.db"},
            "ledger sqlite:///x.db: could not record a step: disk full",
        ),
    ],
    ids=["problem-only", "with-operation", "with-operation-and-url"],
)
def test_a_ledger_error_message_joins_what_it_knows(fields: dict[str, str], message: str) -> None:
    """The message reads as one sentence from the parts the raiser knew."""
    assert str(LedgerError("disk full", **fields)) == message
