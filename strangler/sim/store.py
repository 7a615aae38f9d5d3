"""SQLite persistence of the simulator: orders, idempotency keys of creates, job runs.

WAL mode, one connection per thread. Every write goes through :meth:`SimStore.write`,
which holds a process-wide lock and an SQLite ``BEGIN IMMEDIATE`` transaction, and hands
out strictly increasing ``updated_at`` stamps inside that lock: commit order and stamp
order agree, so a follower reading ``updated_since`` its last stamp misses nothing. Each
stamp is also later than the newest one stored, which the transaction's lock holds still:
several simulator processes can serve one database file (as a legacy app runs on several
app servers) and their stamps keep commit order too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from strangler.sim.model import SimOrder, format_ts, parse_ts

__all__ = ["KEPT_JOB_RUNS", "SimStore", "Writer"]

KEPT_JOB_RUNS = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    user_guid TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    city TEXT,
    amount_cents INTEGER,
    currency TEXT,
    quantity INTEGER,
    payment_token TEXT,
    status TEXT NOT NULL,
    processing_mode TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    fraud_checked_at TEXT,
    authorized_at TEXT,
    fulfilled_at TEXT,
    terminal_at TEXT,
    claimed_at TEXT,
    released_at TEXT,
    release_reason TEXT,
    claim_key TEXT,
    batch_touched INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    vouchers TEXT NOT NULL DEFAULT '[]',
    history TEXT NOT NULL DEFAULT '[]',
    step_results TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS orders_queue
    ON orders (status, processing_mode, created_at, order_id);
CREATE INDEX IF NOT EXISTS orders_updated ON orders (updated_at, order_id);
CREATE TABLE IF NOT EXISTS create_keys (
    idempotency_key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job, run_id);
"""

_COLUMNS = (
    "order_id",
    "user_guid",
    "unit_id",
    "city",
    "amount_cents",
    "currency",
    "quantity",
    "payment_token",
    "status",
    "processing_mode",
    "created_at",
    "updated_at",
    "fraud_checked_at",
    "authorized_at",
    "fulfilled_at",
    "terminal_at",
    "claimed_at",
    "released_at",
    "release_reason",
    "claim_key",
    "batch_touched",
    "attempts",
    "last_error",
    "vouchers",
    "history",
    "step_results",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM orders"  # noqa: S608 (fixed column list)
_INSERT = (
    f"INSERT INTO orders ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_UPDATE = (
    f"UPDATE orders SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} "  # noqa: S608
    "WHERE order_id = ?"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SimStore:
    """The simulator's database file; data survives restarts."""

    def __init__(self, path: Path | str, *, now: Callable[[], datetime] = _utcnow) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._now = now
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        # The newest stamp handed out here; each stamp first looks at the newest stored.
        self._last_stamp = datetime.min.replace(tzinfo=UTC)

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One write transaction; commits when the block ends, rolls back on an exception."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Writer(conn, partial(self._stamp, conn))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get(self, order_id: str) -> SimOrder | None:
        """The order, or None."""
        return _get(self._conn(), order_id)

    def list_orders(
        self,
        *,
        status: str | None = None,
        processing_mode: str | None = None,
        updated_since: str | None = None,
        limit: int,
    ) -> list[SimOrder]:
        """Orders by (updated_at, order_id); ``updated_since`` (canonical text) inclusive."""
        clauses, params = [], []
        for column, value in (("status", status), ("processing_mode", processing_mode)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if updated_since is not None:
            clauses.append("updated_at >= ?")
            params.append(updated_since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY updated_at, order_id LIMIT ?"
        rows = self._conn().execute(sql, (*params, limit)).fetchall()
        return [_order(row) for row in rows]

    def queue(self, status: str, limit: int) -> list[str]:
        """Ids of batch-mode orders in ``status``, oldest first: what a job takes up."""
        rows = self._conn().execute(
            "SELECT order_id FROM orders WHERE status = ? AND processing_mode = 'batch' "
            "ORDER BY created_at, order_id LIMIT ?",
            (status, limit),
        )
        return [row[0] for row in rows]

    def count_orders(self) -> int:
        """How many orders there are."""
        return int(self._conn().execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    def add_job_run(self, job: str, body: Mapping[str, Any]) -> int:
        """Store a finished job run (JobRun without run_id); returns its run_id.

        Only the last ``KEPT_JOB_RUNS`` runs of each job are kept.
        """
        with self._write_lock:
            conn = self._conn()
            cursor = conn.execute(
                "INSERT INTO job_runs (job, body) VALUES (?, ?)", (job, json.dumps(body))
            )
            run_id = int(cursor.lastrowid or 0)
            conn.execute(
                "DELETE FROM job_runs WHERE job = ? AND run_id < (SELECT MIN(run_id) FROM "
                "(SELECT run_id FROM job_runs WHERE job = ? ORDER BY run_id DESC LIMIT ?))",
                (job, job, KEPT_JOB_RUNS),
            )
        return run_id

    def job_runs(self, job: str, limit: int) -> list[dict[str, Any]]:
        """The job's last runs, newest first, as JobRun objects."""
        rows = self._conn().execute(
            "SELECT run_id, body FROM job_runs WHERE job = ? ORDER BY run_id DESC LIMIT ?",
            (job, limit),
        )
        return [{"run_id": run_id, **json.loads(body)} for run_id, body in rows]

    def _stamp(self, conn: sqlite3.Connection) -> str:
        """A timestamp later than every one handed out before, here or by another process
        on this file (call inside a write transaction on ``conn``)."""
        newest = conn.execute("SELECT MAX(updated_at) FROM orders").fetchone()[0]
        if newest is not None:
            self._last_stamp = max(self._last_stamp, parse_ts(newest))
        moment = max(self._now(), self._last_stamp + timedelta(microseconds=1))
        self._last_stamp = moment
        return format_ts(moment)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn


class Writer:
    """The operations available inside one write transaction."""

    def __init__(self, conn: sqlite3.Connection, stamp: Callable[[], str]) -> None:
        self._conn = conn
        self.stamp = stamp

    def get(self, order_id: str) -> SimOrder | None:
        """The order as this transaction sees it."""
        return _get(self._conn, order_id)

    def insert(self, order: SimOrder) -> None:
        """Add a new order."""
        self._conn.execute(_INSERT, _row(order))

    def save(self, order: SimOrder) -> None:
        """Write every field of an existing order."""
        values = _row(order)
        self._conn.execute(_UPDATE, (*values[1:], values[0]))

    def order_for_key(self, key: str) -> str | None:
        """The order id a create with this Idempotency-Key made, if any."""
        row = self._conn.execute(
            "SELECT order_id FROM create_keys WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return row[0] if row else None

    def remember_key(self, key: str, order_id: str) -> None:
        """Remember which order a create with this Idempotency-Key made."""
        self._conn.execute(
            "INSERT OR IGNORE INTO create_keys (idempotency_key, order_id) VALUES (?, ?)",
            (key, order_id),
        )


def _get(conn: sqlite3.Connection, order_id: str) -> SimOrder | None:
    row = conn.execute(f"{_SELECT} WHERE order_id = ?", (order_id,)).fetchone()
    return _order(row) if row else None


def _row(order: SimOrder) -> tuple[Any, ...]:
    return (
        order.order_id,
        order.user_guid,
        order.unit_id,
        order.city,
        order.amount_cents,
        order.currency,
        order.quantity,
        order.payment_token,
        order.status,
        order.processing_mode,
        order.created_at,
        order.updated_at,
        order.fraud_checked_at,
        order.authorized_at,
        order.fulfilled_at,
        order.terminal_at,
        order.claimed_at,
        order.released_at,
        order.release_reason,
        order.claim_key,
        int(order.batch_touched),
        order.attempts,
        order.last_error,
        json.dumps(list(order.vouchers)),
        json.dumps([dict(record) for record in order.history]),
        json.dumps({step: dict(body) for step, body in order.step_results.items()}),
    )


def _order(row: tuple[Any, ...]) -> SimOrder:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["batch_touched"] = bool(data["batch_touched"])
    data["vouchers"] = tuple(json.loads(data["vouchers"]))
    data["history"] = tuple(json.loads(data["history"]))
    data["step_results"] = MappingProxyType(json.loads(data["step_results"]))
    return SimOrder(**data)
