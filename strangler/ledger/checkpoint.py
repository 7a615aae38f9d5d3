"""A background checkpointer for a SQLite ledger's WAL, off every writer's commit.

SQLite checkpoints a WAL database inside the commit that takes the WAL past
``wal_autocheckpoint`` pages: that commit copies the WAL's pages into the database file
and syncs both before it returns. Measured on a 200,000-order ledger at 200 orders/s
under a report loop, that commit was often the intake's (0.17 s and 0.61 s fsyncs in an
HTTP worker's request thread), and while a report held an older snapshot every commit
past the mark tried again, so each in turn synced. The ledger's connections therefore
keep only a far backstop (:data:`strangler.ledger.engine.WAL_AUTOCHECKPOINT_PAGES`) and a
:class:`WalCheckpointer` thread, in each long-lived routing process, checkpoints instead:

every :data:`INTERVAL_S` it runs ``PRAGMA wal_checkpoint(PASSIVE)``, which takes no lock
a writer waits for, copies what was committed since the last one (nothing committed,
nothing copied or synced) and stops at the oldest snapshot a reader still holds. A
passive checkpoint alone never lets the WAL start over while writes go on (a writer
starts it over only if, when its transaction began, every frame was copied), so when a
passive one copied everything and the WAL holds :data:`RESTART_FRAMES` or more, a
``wal_checkpoint(RESTART)`` follows at once, without any busy wait: it takes the write
lock only if free, copies the few frames committed since (usually none), and makes the
next writer start the WAL over; with a reader still in the WAL it gives up at once. The
``-wal`` file thus keeps a high-water mark of about :data:`RESTART_FRAMES` pages under
steady writes, and grows only while readers hold snapshots back to back.

It never opens the database's files itself: closing any descriptor of a file drops every
POSIX lock the process holds on it, SQLite's included (a first version read the WAL
index from the ``-shm`` file, and orders answered as stored were lost).
Checkpoints are serialised by SQLite, so more than one checkpointer on a file is safe.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

__all__ = [
    "INTERVAL_S",
    "RESTART_FRAMES",
    "Checkpoint",
    "WalCheckpointer",
]

# At 200 orders/s about 2,500 WAL frames (10 MB) a checkpoint. Routing rewrites the same
# few pages, each copied once per checkpoint; the copying is this thread's, not a writer's.
INTERVAL_S = 1.0
# About 40 MB of 4 KB pages (the former autocheckpoint mark): the WAL is started over
# past this, every few seconds at 200 orders/s.
RESTART_FRAMES = 10_000
# A checkpoint slower than this is logged at info level (the others at debug).
SLOW_CHECKPOINT_S = 0.5
_STOP_WAIT_S = 5.0
_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint's outcome: SQLite's three figures and how long it took."""

    mode: str
    busy: bool
    log_frames: int
    checkpointed_frames: int
    seconds: float

    @property
    def complete(self) -> bool:
        """Every frame of the WAL is in the database file."""
        return not self.busy and self.checkpointed_frames == self.log_frames


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite file's WAL every ``interval_s``.

    :meth:`start` and :meth:`stop` (which interrupts a checkpoint under way) once each.
    Errors are logged and retried at the next interval; the thread never dies of them.
    """

    def __init__(
        self,
        database: Path,
        *,
        interval_s: float = INTERVAL_S,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        if interval_s <= 0 or restart_frames < 1:
            raise ValueError(
                "the checkpointer's interval and restart frames must be positive "
                f"(got {interval_s}, {restart_frames})"
            )
        self._database = database
        self._interval_s = interval_s
        self._restart_frames = restart_frames
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._held_back = False
        self.checkpoints = 0
        self.last: Checkpoint | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start checkpointing."""
        self._thread.start()
        _log.info(
            "wal_checkpointer_started", database=str(self._database), interval_s=self._interval_s
        )

    def stop(self, timeout: float = _STOP_WAIT_S) -> None:
        """Stop the thread (a checkpoint under way is interrupted) and close its connection."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                with self._lock:
                    if self._connection is not None:
                        self._connection.interrupt()
                self._thread.join(timeout)
        self._close()

    def checkpoint(self) -> Checkpoint:
        """One passive checkpoint (kept as :attr:`last`), then a restarting one when it
        copied all of a long WAL; raises sqlite3.Error on failure."""
        done = self._checkpoint("PASSIVE")
        self._note(done)
        self.last = done
        if done.complete and done.log_frames >= self._restart_frames:
            self._note(self._checkpoint("RESTART"))
        return done

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:
                if self._stopping.is_set():
                    break
                _log.warning("wal_checkpoint_failed", database=str(self._database), error=str(exc))
                self._close()

    def _checkpoint(self, mode: str) -> Checkpoint:
        started = time.perf_counter()
        row = self._open().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        busy, log_frames, checkpointed = row
        self.checkpoints += 1
        return Checkpoint(mode, bool(busy), log_frames, checkpointed, time.perf_counter() - started)

    def _note(self, done: Checkpoint) -> None:
        fields = {
            "database": str(self._database),
            "mode": done.mode,
            "log_frames": done.log_frames,
            "checkpointed_frames": done.checkpointed_frames,
            "busy": done.busy,
            "seconds": round(done.seconds, 4),
        }
        slow = done.seconds >= SLOW_CHECKPOINT_S
        (_log.info if slow else _log.debug)("wal_checkpointed", **fields)
        # A reader's older snapshot stops the copy short; said once, and once it is over.
        if done.mode != "PASSIVE":
            return
        held_back = not done.complete
        if held_back != self._held_back:
            self._held_back = held_back
            event = "wal_checkpoint_held_back" if held_back else "wal_checkpoint_caught_up"
            _log.info(event, **fields)

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            if self._connection is None:
                # No busy wait: PASSIVE never waits, and RESTART must give up at once.
                self._connection = sqlite3.connect(
                    self._database, timeout=0, isolation_level=None, check_same_thread=False
                )
            return self._connection

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
