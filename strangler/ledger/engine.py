"""Engines for the ledger's two databases, tuned for a busy intake path.

SQLite: WAL journal, ``synchronous=NORMAL`` (durable across a process crash, at most the
last transactions lost on power failure), a busy timeout, foreign keys on, and
``BEGIN IMMEDIATE`` for writing transactions so that writers queue on the busy timeout
instead of failing when a read lock cannot be upgraded. The WAL is checkpointed by a
background thread of each routing process (strangler.ledger.checkpoint), not inside the
commit that takes it past SQLite's mark, which was often the intake's; the connections
keep only a backstop, :data:`WAL_AUTOCHECKPOINT_PAGES` (about 400 MB), so that a process
running without a checkpointer (``serve --routing none`` alone, a command) still bounds
the WAL.
Temporary storage (sorts and materialized CTEs larger than the page cache: a report's)
is in memory, so a long read never writes to the disk the intake's checkpoints sync.
PostgreSQL: psycopg 3 with connect, statement and lock timeouts. A pooled connection is
checked on checkout without a round trip (:func:`_refuse_if_closed_by_server`): the
server closing it (a restart, ``pg_terminate_backend``, an idle timeout) leaves its
socket readable, and such a connection is replaced before use. SQLAlchemy's
``pool_pre_ping`` sent a query per checkout instead, a round trip added to every
transaction (about a quarter of a millisecond each, on every order's way from intake to
routing).

Reads (reports, the dashboard, an order's story, metrics, readiness) go through
:func:`read_snapshot`: one read-only snapshot that never takes a write lock, so a long
report never blocks the intake.
"""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from strangler.exceptions import ConfigurationError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "READ_ONLY",
    "WAL_AUTOCHECKPOINT_PAGES",
    "create_ledger_engine",
    "display_url",
    "enter_wal",
    "in_memory",
    "normalize_url",
    "read_snapshot",
]

BUSY_TIMEOUT_MS = 5000
# A backstop only: strangler.ledger.checkpoint keeps the WAL far below it.
WAL_AUTOCHECKPOINT_PAGES = 100_000
# How often a connection tries again to put a new file in WAL mode (see enter_wal).
_WAL_RETRY_S = 0.01
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 10_000
# Execution option marking a connection that only reads (SQLite: plain deferred BEGIN).
READ_ONLY = "strangler_read_only"


def normalize_url(url: str) -> URL:
    """Parse a ledger URL; PostgreSQL URLs without a driver get psycopg 3.

    Raises ConfigurationError for a malformed URL or a database other than SQLite or
    PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(
            f"STRANGLER_LEDGER_URL {url!r} is not a database URL: {exc}; "
            "use sqlite:///path/to/ledger.sqlite3 or postgresql+psycopg://user:pw@host/db"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgres" or parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigurationError(
            f"STRANGLER_LEDGER_URL uses {backend!r}; the ledger supports sqlite:/// and "
            "postgresql+psycopg:// URLs"
        )
    return parsed


def display_url(url: URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    return url.render_as_string(hide_password=True)


def create_ledger_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the settings above; creates a SQLite file's folder.

    Raises ConfigurationError for an unsupported URL, or a PostgreSQL URL without the
    ``postgres`` extra (psycopg) installed.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return _postgres_engine(parsed)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("psycopg"):
            raise
        raise ConfigurationError(
            f"the ledger URL {display_url(parsed)} needs PostgreSQL support, which is not "
            "installed: pip install 'strangler[postgres]'"
        ) from exc


@contextmanager
def read_snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside one read-only snapshot transaction, ended when the block exits.

    SQLite: a deferred ``BEGIN`` under WAL, whose snapshot starts at the first SELECT and
    never takes the write lock, so writers go on while it reads. PostgreSQL: ``REPEATABLE
    READ READ ONLY``, every statement seeing the same snapshot. Writing through it fails.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(**{READ_ONLY: True})
        else:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _postgres_engine(url: URL) -> sa.Engine:
    engine = sa.create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": (
                f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
            ),
        },
    )
    sa.event.listen(engine, "checkout", _refuse_if_closed_by_server)
    return engine


def _refuse_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection that the server has closed (no round trip).

    Between transactions the server sends an idle connection nothing unasked, save the
    error it sends as it closes it (a shutdown, ``pg_terminate_backend``) and the end of
    the stream: anything readable means the connection is gone or about to be. Raising
    DisconnectionError makes the pool discard it and connect afresh (up to three times).
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise sa.exc.DisconnectionError("the pooled connection was closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise sa.exc.DisconnectionError("the server closed the pooled connection")


def in_memory(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory, which no other process can open."""
    parsed = normalize_url(url)
    return parsed.get_backend_name() == "sqlite" and _memory_database(parsed)


def _memory_database(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL) -> sa.Engine:
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if _memory_database(url):
        # One shared connection; SqlLedger serialises access to it.
        options["poolclass"] = StaticPool
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options.update(pool_size=10, max_overflow=20, pool_timeout=10)
    engine = sa.create_engine(url, **options)
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        enter_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        # Sorts and materialized CTEs past the page cache stay in memory instead of
        # /var/tmp files: a report over 1M orders wrote ~250 MB of them on the disk whose
        # fsyncs the intake's checkpoints wait for (see docs/ledger.md).
        cursor.execute("PRAGMA temp_store = MEMORY")
    finally:
        cursor.close()


def enter_wal(cursor: Any, *, timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """``PRAGMA journal_mode = WAL`` on a new connection's ``cursor``, tried again while busy.

    On a file not yet in WAL mode (a new ledger), processes opening it at once each try to
    switch it, and SQLite answers one of them SQLITE_BUSY at once, without its busy wait
    (that one holds a read lock the other's switch waits for: waiting could deadlock). Seen
    as a routing child of ``serve --routing-processes 2`` dying at start with "database is
    locked" (2 rounds in 30 of 4 processes opening a new file together). So a busy answer
    is tried again every :data:`_WAL_RETRY_S` until ``timeout_s`` (the busy timeout).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_S)


def _on_sqlite_begin(connection: sa.Connection) -> None:
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
