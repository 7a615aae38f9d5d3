"""The WAL checkpointer: writers leave checkpoints to it, and it keeps the WAL bounded."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.ledger.checkpoint import WalCheckpointer
from strangler.ledger.engine import read_snapshot
from tests.helpers import wait_until
from tests.unit.ledger.support import make_order

# SQLite's own default: a writer checkpoints at 1,000 pages unless told otherwise.
SQLITE_DEFAULT_PAGES = 1_000


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    opened = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def _database(ledger: SqlLedger) -> Path:
    database = ledger.sqlite_file
    assert database is not None
    return database


def _take_in(ledger: SqlLedger, orders: int, names: Iterator[int]) -> None:
    for _ in range(orders):
        ledger.record_received(make_order(f"o-{next(names)}"), source="api")


@contextmanager
def _write_loop(ledger: SqlLedger) -> Iterator[None]:
    """Orders taken in on a thread, back to back, while the block runs."""
    stop = threading.Event()
    names = itertools.count()

    def run() -> None:
        while not stop.is_set():
            _take_in(ledger, 10, names)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _wal_bytes(database: Path) -> int:
    return os.stat(f"{database}-wal").st_size


def test_writers_leave_the_wal_to_the_checkpointer(ledger: SqlLedger) -> None:
    """Past SQLite's 1,000 pages the ledger's own writes still copy nothing back: the WAL
    file grows on (a checkpoint would have let it start over); a checkpoint then copies
    it all."""
    names = itertools.count()
    database = _database(ledger)
    with sqlite3.connect(database) as probe:
        page_size = probe.execute("PRAGMA page_size").fetchone()[0]
    while _wal_bytes(database) <= SQLITE_DEFAULT_PAGES * 2 * page_size:
        _take_in(ledger, 50, names)
    done = WalCheckpointer(database).checkpoint()
    assert done.complete
    assert done.log_frames > SQLITE_DEFAULT_PAGES * 2


def test_no_checkpointer_in_memory() -> None:
    """A ledger in memory has no WAL, hence no checkpointer."""
    in_memory = ledger_from_url("sqlite://")
    try:
        assert in_memory.wal_checkpointer() is None
    finally:
        in_memory.close()


def test_a_checkpoint_copies_what_was_committed(ledger: SqlLedger) -> None:
    """A passive checkpoint copies everything committed; the next has nothing to copy."""
    database = _database(ledger)
    _take_in(ledger, 200, itertools.count())
    checkpointer = WalCheckpointer(database)
    done = checkpointer.checkpoint()
    assert (done.complete, done.checkpointed_frames > 0) == (True, True)
    again = checkpointer.checkpoint()
    assert (again.complete, again.log_frames) == (True, done.log_frames)
    assert checkpointer.last == again


def test_the_wal_stays_bounded_under_a_write_loop_and_a_long_reader(ledger: SqlLedger) -> None:
    """A reader's snapshot holds the WAL back; once it ends the WAL is copied back and
    starts over, again and again, while the writes go on."""
    database = _database(ledger)
    checkpointer = WalCheckpointer(database, interval_s=0.01, restart_frames=1_000)

    def frames() -> int:
        return checkpointer.last.log_frames if checkpointer.last else 0

    checkpointer.start()
    try:
        with _write_loop(ledger):
            wait_until(lambda: checkpointer.checkpoints >= 3, 30, "checkpoints under writes")
            with read_snapshot(ledger.engine) as reader:
                reader.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
                # The snapshot stops the copy short and the WAL from starting over.
                wait_until(lambda: frames() > 2_000, 60, "the WAL to grow", detail=frames)
                wait_until(
                    lambda: checkpointer.last is not None and not checkpointer.last.complete,
                    30,
                    "a checkpoint held back by the reader",
                    detail=lambda: checkpointer.last,
                )
                held = frames()
            # Released: copied back and started over, again and again, though writes never
            # pause (a passive checkpoint alone would let the WAL grow on).
            wait_until(lambda: frames() < held / 4, 30, "the WAL to start over", detail=frames)
            restarts, seen = 0, frames()
            while restarts < 5:
                wait_until(
                    lambda last=seen: frames() != last, 30, "another checkpoint", detail=frames
                )
                restarts, seen = restarts + (frames() < seen), frames()
    finally:
        checkpointer.stop()
    assert not checkpointer.running


def test_stop_ends_the_thread_and_a_second_stop_is_harmless(ledger: SqlLedger) -> None:
    """The thread stops with its owner, and its connection is closed."""
    checkpointer = WalCheckpointer(_database(ledger), interval_s=0.01)
    checkpointer.start()
    assert checkpointer.running
    checkpointer.stop()
    assert not checkpointer.running
    checkpointer.stop()


@pytest.mark.parametrize(("interval", "frames"), [(0.0, 10), (-1.0, 10), (1.0, 0)])
def test_bad_settings_are_refused(tmp_path: Path, interval: float, frames: int) -> None:
    """An interval or restart size that is not positive is named."""
    with pytest.raises(ValueError, match="checkpointer's interval and restart frames"):
        WalCheckpointer(tmp_path / "x.sqlite3", interval_s=interval, restart_frames=frames)
