"""One daemon thread that runs jobs at their due time: how a parked execution resumes.

An execution that waits (a Retry interval, a Wait state) gives up its thread: its loop
is handed here with the time it is due, and the timer thread hands it back to a worker
then. The thread sleeps until the earliest due job and is woken only when an earlier one
arrives, so any number of parked executions cost one thread and a heap entry each.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
import time
from collections.abc import Callable

import structlog

__all__ = ["after"]

_log = structlog.get_logger()


class _Timer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, job: Callable[[], None]) -> None:
        due = time.monotonic() + seconds
        with self._lock:
            heapq.heappush(self._heap, (due, next(self._order), job))
            if due < self._wake_at:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="asl-timer", daemon=True)
                    self._thread.start()
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._wake_at = self._heap[0][0] if self._heap else math.inf
                    timeout = None if not self._heap else self._wake_at - now
                    self._wakeup.wait(timeout)
                    self._wake_at = -math.inf  # looking now: no need to be woken
                    continue
            for job in due:
                try:
                    job()
                except Exception:  # the timer outlives one job's failure (no thread left)
                    _log.exception("asl_timer_job_failed")


_TIMER = _Timer()


def after(seconds: float, job: Callable[[], None]) -> None:
    """Run ``job`` on the timer thread in ``seconds`` (monotonic); it must be quick and
    must not raise (hand real work to a worker)."""
    _TIMER.after(seconds, job)


def _forget_after_fork() -> None:
    """A forked child has no timer thread: start afresh (the parent's jobs are not its)."""
    global _TIMER  # noqa: PLW0603 - the one timer of this process
    _TIMER = _Timer()


os.register_at_fork(after_in_child=_forget_after_fork)
