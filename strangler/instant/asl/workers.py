"""Daemon worker threads for Task timeouts and for Map and Parallel concurrency.

Python cannot stop a running thread, so a handler that outlives its Task's
``TimeoutSeconds`` keeps its worker until it returns; the executor simply stops waiting.
Workers are daemon threads (a stuck handler never blocks interpreter exit), are reused
while idle, and end after :data:`IDLE_SECONDS` without work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["IDLE_SECONDS", "MAX_IDLE", "Job", "submit"]

IDLE_SECONDS = 30.0
MAX_IDLE = 64


class Job:
    """A call handed to a worker; :meth:`wait` for it, then read :meth:`result`."""

    __slots__ = ("_done", "_error", "_finished", "_fn", "_value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        # A lock held until the call completes: lighter than an Event for one waiter.
        self._done = threading.Lock()
        self._done.acquire()
        self._finished = False
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        """Call the function and keep its outcome; :meth:`complete` then wakes the waiter."""
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed back to the waiting thread as is
            self._error = exc

    def complete(self) -> None:
        self._finished = True
        self._done.release()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the call has returned or raised; False if ``timeout`` passed first.

        Only one thread may wait for a Job.
        """
        if self._finished:
            return True
        if self._done.acquire(timeout=-1 if timeout is None else timeout):
            self._done.release()
            return True
        return False

    def result(self) -> Any:
        """The call's return value, or its exception raised again."""
        if self._error is not None:
            raise self._error
        return self._value


class _Worker:
    __slots__ = ("inbox",)

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="asl-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                job = self.inbox.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with _lock:
                    if self in _idle:
                        _idle.remove(self)
                        return
                continue  # taken from the idle list just now: its job is on the way
            job.run()
            # Back on the idle list before waking the waiter, so that its next submit
            # finds this worker instead of starting a thread.
            with _lock:
                keep = len(_idle) < MAX_IDLE
                if keep:
                    _idle.append(self)
            job.complete()
            if not keep:
                return


_lock = threading.Lock()
_idle: list[_Worker] = []


def submit(fn: Callable[[], Any]) -> Job:
    """Run ``fn`` on an idle worker (or a new one) and return its Job."""
    job = Job(fn)
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
    worker.inbox.put(job)
    return job
