"""Ledger retention: archive terminal orders older than N days, then delete them.

One run (:meth:`Retention.run_once`) moves the horizon (kv ``retention.horizon``: orders
received before it may have been archived, so reports can say which window they hold;
moved only by a run that archives something),
writes every terminal order received before the horizon, with its steps, transitions and
comparisons, to one gzip JSON-lines file in the data dir (written, fsynced and renamed
into place before any row is deleted), then deletes those rows in bounded batches,
children before parents. A run cut short is safe to repeat: rows not yet deleted are
archived again by the next run (readers dedupe archives by ``order_id``). Where
processes share a ledger, one at a time runs it (the ledger's ``retention`` role).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from strangler.background.role_loop import RoleLoop
from strangler.backoff import Backoff
from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, default_owner, utc_now

__all__ = ["HORIZON_KEY", "ROLE", "Retention", "RetentionRun", "read_archive"]

_log = structlog.get_logger()

HORIZON_KEY = "retention.horizon"
ROLE = "retention"


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one retention run did: the horizon, the orders archived, the archive file."""

    horizon: datetime
    archived: int
    archive: Path | None


class Retention:
    """Archives and deletes terminal orders received more than ``days`` days ago.

    ``days`` = 0 keeps every order for ever (a run does nothing). A run archives at most
    ``max_orders`` orders and deletes them ``batch_size`` at a time; a backlog larger
    than that is taken on the following runs. :meth:`start` runs it every
    ``interval_s`` seconds on a background thread.
    """

    def __init__(
        self,
        ledger: SqlLedger,
        *,
        archive_dir: Path,
        days: int,
        batch_size: int = 500,
        max_orders: int = 20_000,
        interval_s: float = 3600.0,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if days < 0 or batch_size < 1 or max_orders < 1 or interval_s <= 0:
            raise ValueError(
                "retention needs days >= 0, batch_size >= 1, max_orders >= 1 and "
                f"interval_s > 0, got {days}, {batch_size}, {max_orders} and {interval_s}"
            )
        self.ledger = ledger
        self.archive_dir = archive_dir
        self.days = days
        self.batch_size = batch_size
        self.max_orders = max_orders
        self.interval_s = interval_s
        self.owner = owner or default_owner()
        self._clock = clock
        self._loop = RoleLoop(
            ledger,
            ROLE,
            owner=self.owner,
            role_seconds=2 * interval_s,
            work=self.run_once,
            backoff=Backoff(interval_s, interval_s),
            failed=_run_failed,
            survives=(LedgerError, OSError),
            name="retention",
        )

    def run_once(self) -> RetentionRun | None:
        """Archive then delete what is past the horizon; None when retention is off.

        Raises LedgerError when the database fails and OSError when the archive cannot be
        written (nothing is deleted then).
        """
        if self.days == 0:
            return None
        now = self._clock()
        horizon = now - timedelta(days=self.days)
        ids = self._expired_ids(horizon)
        if not ids:
            return RetentionRun(horizon=horizon, archived=0, archive=None)
        # Moved only when something goes: a report shows a horizon only when it hides orders.
        self._advance_horizon(horizon)
        archive = self._write_archive(ids, now)
        for start in range(0, len(ids), self.batch_size):
            self._delete(ids[start : start + self.batch_size])
        _log.info("retention_archived", orders=len(ids), archive=str(archive))
        return RetentionRun(horizon=horizon, archived=len(ids), archive=archive)

    def start(self) -> None:
        """Run every ``interval_s`` seconds on a background thread until :meth:`stop`."""
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the background thread and give up the role; False when a run did not end."""
        return self._loop.stop(timeout)

    def _advance_horizon(self, horizon: datetime) -> None:
        # Only forward: a run with a longer retention must not claim older orders exist.
        current = self.ledger.get_value(HORIZON_KEY)
        if current is None or datetime.fromisoformat(current) < horizon:
            self.ledger.set_value(HORIZON_KEY, horizon.isoformat())

    def _expired_ids(self, horizon: datetime) -> list[str]:
        return self.ledger.expired_orders(received_before=horizon, limit=self.max_orders)

    def _write_archive(self, ids: Sequence[str], now: datetime) -> Path:
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        name = f"ledger-archive-{now.strftime('%Y%m%dT%H%M%S%fZ')}.jsonl.gz"
        final = self.archive_dir / name
        partial = final.with_name(name + ".partial")
        try:
            self._write_records(partial, ids)
        except BaseException:
            partial.unlink(missing_ok=True)  # a half-written archive holds nothing to keep
            raise
        partial.replace(final)
        _fsync_dir(self.archive_dir)
        return final

    def _write_records(self, path: Path, ids: Sequence[str]) -> None:
        with path.open("wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb") as archive:
                for start in range(0, len(ids), self.batch_size):
                    batch = ids[start : start + self.batch_size]
                    for record in self.ledger.archive_records(batch):
                        archive.write(json.dumps(record, default=_iso).encode() + b"\n")
            raw.flush()
            os.fsync(raw.fileno())

    def _delete(self, ids: Sequence[str]) -> None:
        self.ledger.delete_terminal(ids)


def _run_failed(exc: Exception, _retry_in_s: float) -> None:  # the next run tries again
    _log.warning("retention_failed", error=str(exc))


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one archive file, one per order, as written."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
