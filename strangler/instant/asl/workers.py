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

    __slots__ = ("_done", "_error", "_fn", "_value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed back to the waiting thread as is
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the call has returned or raised; False if ``timeout`` passed first."""
        return self._done.wait(timeout)

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
            with _lock:
                if len(_idle) >= MAX_IDLE:
                    return
                _idle.append(self)


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
