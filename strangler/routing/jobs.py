"""The dispatcher's job queue: which job a free worker takes next.

Two kinds of job wait for a worker: a fresh order (claimed from the ledger, not started
yet) and a resumed one (a parked order whose execution has ended, to be recorded). A
fresh order goes first: its customer is waiting, while a resumed order is late by design
(it waited out a Retry interval) and what is left of it is bookkeeping. So that a steady
stream of fresh orders cannot hold resumed ones back for ever, a resumed job that has let
``fresh_in_a_row`` fresh ones pass goes next. At most ``max_resumed`` resumed jobs are
with workers at once (one worker fewer than there are, by default), so that a fresh order
finds a worker even while many parked executions end together. Within each kind, first
in, first out.

A worker that finishes a resumed job says so with :meth:`JobQueue.resumed_done`. Stop
marks (``None``) come after every job a worker may take.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

__all__ = ["JobQueue"]

F = TypeVar("F")
R = TypeVar("R")


class JobQueue(Generic[F, R]):
    """Fresh jobs (``F``) before resumed ones (``R``), resumed ones bounded; thread-safe."""

    def __init__(self, *, max_resumed: int, fresh_in_a_row: int) -> None:
        if max_resumed < 1:
            raise ValueError(f"max_resumed must be at least 1, got {max_resumed}")
        if fresh_in_a_row < 1:
            raise ValueError(f"fresh_in_a_row must be at least 1, got {fresh_in_a_row}")
        self.max_resumed = max_resumed
        self.fresh_in_a_row = fresh_in_a_row
        self._fresh: deque[F] = deque()
        self._resumed: deque[R] = deque()
        self._stops = 0
        self._with_workers = 0  # resumed jobs taken and not done yet
        self._passed = 0  # fresh jobs taken while a resumed one could have gone instead
        self._ready = threading.Condition(threading.Lock())

    def put_fresh(self, job: F) -> None:
        """Queue a fresh order."""
        with self._ready:
            self._fresh.append(job)
            self._ready.notify()

    def put_resumed(self, job: R) -> None:
        """Queue a resumed order (a worker is woken only if it may take it now)."""
        with self._ready:
            self._resumed.append(job)
            if self._with_workers < self.max_resumed:
                self._ready.notify()

    def put_stop(self) -> None:
        """Queue one stop mark: one worker ends when nothing it may take is left."""
        with self._ready:
            self._stops += 1
            self._ready.notify()

    def get(self, timeout: float | None = None) -> F | R | None:
        """The next job (None: a stop mark), once one may be taken.

        Raises TimeoutError when none may be taken within ``timeout`` seconds.
        """
        with self._ready:
            while True:
                found, job = self._next()
                if found:
                    return job
                if not self._ready.wait(timeout):
                    raise TimeoutError(f"no job could be taken within {timeout}s")

    def resumed_done(self) -> None:
        """A worker has finished a resumed job: its place goes to the next one, if queued.

        Only a queued resumed job can become takeable here (a waiting worker found nothing
        else), so a worker is woken only for one: waking it for nothing costs a thread
        switch per resumed job.
        """
        with self._ready:
            if self._with_workers < 1:
                raise RuntimeError("resumed_done() without a resumed job taken")
            self._with_workers -= 1
            if self._resumed:
                self._ready.notify()

    def take_fresh(self) -> list[F]:
        """Remove and return every fresh job still queued (a stopping dispatcher)."""
        with self._ready:
            taken = list(self._fresh)
            self._fresh.clear()
            return taken

    def counts(self) -> tuple[int, int, int]:
        """Queued fresh jobs, queued resumed jobs, resumed jobs with workers."""
        with self._ready:
            return len(self._fresh), len(self._resumed), self._with_workers

    def _next(self) -> tuple[bool, F | R | None]:
        """Whether a job may be taken now, and which (call under the lock)."""
        resumable = bool(self._resumed) and self._with_workers < self.max_resumed
        if self._fresh and not (resumable and self._passed >= self.fresh_in_a_row):
            self._passed = self._passed + 1 if resumable else 0
            return True, self._fresh.popleft()
        if resumable:
            self._passed = 0
            self._with_workers += 1
            return True, self._resumed.popleft()
        if self._stops:
            self._stops -= 1
            return True, None
        return False, None
