"""Group commit: a process's SQLite writers that queue for their turn share one commit.

SQLite takes one writer at a time, and the writers of one process take turns on one lock
(:class:`strangler.ledger.SqlLedger`), so that they queue here rather than in SQLite's
busy handler. A write that finds the turn taken is queued as a callable; the writer
holding the turn runs its own write, then every write queued meanwhile (up to
``max_group``), each in its own ``SAVEPOINT``, and commits them all at once. So:

- a caller returns only once its own write is committed, with its own result or its own
  exception: a write that fails is rolled back to its savepoint, and the others commit;
- a commit that fails fails every write in it, each caller with that error, and so does
  a write's failure that ended the whole transaction (SQLite rolls it all back on a full
  disk or an I/O error, say): nothing of the group run so far is kept, and the writes
  not run yet go back to the queue for the next turn;
- the holder's own write comes first, outside any savepoint: when it fails, nothing was
  added to its transaction yet, and the queued writes wait for the next turn;
- a queued write whose deadline passes before any holder took it leaves the queue with a
  timeout, as a writer waiting for the lock did; once taken, it waits for that commit.

Writes that cannot be handed over (a block of statements run by the caller itself) wait
for the turn in the same queue, first come first served, and get it passed to them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

__all__ = ["TurnTimeout", "WriteTurns"]

_T = TypeVar("_T")
_C = TypeVar("_C")


class TurnTimeout(Exception):
    """No turn to write came before the deadline (this process's other writes held it)."""


class _Queued(Generic[_C]):
    """One writer waiting: its write (None: it wants the turn itself) and its outcome."""

    __slots__ = ("error", "lead", "ready", "result", "work")

    def __init__(self, work: Callable[[_C], Any] | None) -> None:
        self.work = work
        self.ready = threading.Event()
        self.lead = False  # the turn was passed to this writer
        self.result: Any = None
        self.error: BaseException | None = None


class WriteTurns(Generic[_C]):
    """One process's turn to write, passed on in order, with queued writes grouped.

    ``transaction(deadline)`` opens a write transaction (committed when its block ends
    cleanly, else rolled back); ``savepoint(conn)`` wraps one write inside it (released
    when the block ends cleanly, else rolled back to, the exception going on);
    ``is_open(conn)`` tells whether the transaction is still open after a write failed.
    """

    def __init__(
        self,
        transaction: Callable[[float], AbstractContextManager[_C]],
        savepoint: Callable[[_C], AbstractContextManager[None]],
        is_open: Callable[[_C], bool],
        *,
        max_group: int = 32,
    ) -> None:
        if max_group < 1:
            raise ValueError(f"max_group must be 1 or more, got {max_group}")
        self._transaction = transaction
        self._savepoint = savepoint
        self._is_open = is_open
        self._max_group = max_group
        self._turn = threading.Lock()
        self._queue: deque[_Queued[_C]] = deque()
        self._queue_lock = threading.Lock()
        self.commits = 0  # transactions committed by run(); for tests and benches

    @property
    def waiting(self) -> int:
        """How many writers are queued for a turn now."""
        with self._queue_lock:
            return len(self._queue)

    def run(self, work: Callable[[_C], _T], deadline: float) -> _T:
        """Run ``work(conn)`` in a write transaction, maybe with other queued writes;
        its result once committed. Raises what ``work`` or the commit raised, or
        TurnTimeout when no turn came by ``deadline`` (a ``time.monotonic()`` value)."""
        queued = self._take_turn_or_queue(work)
        if queued is not None:
            self._wait(queued, deadline)
            if not queued.lead:
                if queued.error is not None:
                    raise queued.error
                return queued.result  # type: ignore[no-any-return]
        try:
            return self._lead(work, deadline)
        finally:
            self._pass_turn()

    def take(self, deadline: float) -> None:
        """Take the turn for writes the caller runs itself (not grouped), in the queue's
        order; give it back with :meth:`give_back`. Raises TurnTimeout when it did not
        come by ``deadline``."""
        queued = self._take_turn_or_queue(None)
        if queued is not None:
            self._wait(queued, deadline)

    def give_back(self) -> None:
        """End the caller's turn (taken with :meth:`take`)."""
        self._pass_turn()

    def _take_turn_or_queue(self, work: Callable[[_C], Any] | None) -> _Queued[_C] | None:
        """None when the turn was free (it is the caller's now), else the caller's place."""
        if self._turn.acquire(blocking=False):  # free: nobody to queue behind
            return None
        with self._queue_lock:
            # Under the queue's lock: a turn ending now either sees this one queued or
            # was freed before the try (a free turn has an empty queue).
            if self._turn.acquire(blocking=False):
                return None
            queued: _Queued[_C] = _Queued(work)
            self._queue.append(queued)
            return queued

    def _wait(self, queued: _Queued[_C], deadline: float) -> None:
        """Wait until the write was run or the turn passed to it; TurnTimeout when neither
        came by ``deadline`` and no holder took it meanwhile."""
        if queued.ready.wait(max(0.0, deadline - time.monotonic())):
            return
        with self._queue_lock:
            if queued in self._queue:
                self._queue.remove(queued)
                raise TurnTimeout
        queued.ready.wait()  # taken by a holder just now: its commit is on its way

    def _pass_turn(self) -> None:
        """End the caller's turn: to the first writer queued, or free it."""
        with self._queue_lock:
            if self._queue:
                head = self._queue.popleft()
                head.lead = True
                head.ready.set()
                return
            self._turn.release()

    def _lead(self, work: Callable[[_C], _T], deadline: float) -> _T:
        """The turn holder's transaction: its own write, then the queued ones, one commit."""
        taken: list[_Queued[_C]] = []
        try:
            with self._transaction(deadline) as conn:
                result = work(conn)
                # Read without the queue's lock: a write queued just after this finds the
                # turn still taken, and is passed the turn when this one ends.
                while self._queue and len(taken) < self._max_group:
                    more = self._take_queued(self._max_group - len(taken))
                    if not more:
                        break
                    for index, queued in enumerate(more):
                        taken.append(queued)
                        try:
                            self._run_queued(conn, queued)
                        except BaseException:
                            self._requeue(more[index + 1 :])  # not run: the next turn's
                            raise
            self.commits += 1
        except BaseException as exc:
            for queued in taken:  # nothing of theirs was committed either
                queued.result, queued.error = None, exc
            raise
        finally:
            for queued in taken:
                queued.ready.set()
        return result

    def _run_queued(self, conn: _C, queued: _Queued[_C]) -> None:
        assert queued.work is not None
        try:
            with self._savepoint(conn):
                queued.result = queued.work(conn)
        except Exception as exc:
            if not self._is_open(conn):  # the database ended the transaction: all fail
                raise
            queued.error = exc  # that write's own failure, rolled back to its savepoint

    def _requeue(self, writes: list[_Queued[_C]]) -> None:
        """Put writes taken but not run back at the head of the queue, in order."""
        with self._queue_lock:
            self._queue.extendleft(reversed(writes))

    def _take_queued(self, limit: int) -> list[_Queued[_C]]:
        """Up to ``limit`` queued writes, in order; writers wanting the turn stay queued."""
        with self._queue_lock:
            writes = [queued for queued in self._queue if queued.work is not None][:limit]
            for queued in writes:
                self._queue.remove(queued)
        return writes
