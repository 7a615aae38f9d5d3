"""Reports kept for a few seconds, and computed once however many ask at the same time.

A report over a big ledger takes seconds. Every open dashboard asks for one every few
seconds, so without a cache the reports pile up. Here the same question (the same
query) asked within ``ttl_s`` gets the answer already computed, and a question asked
while its answer is being computed waits for that computation instead of starting
another one. Answers are computed one at a time on a thread of their own at a lower CPU
priority (nice +:data:`NICENESS`, Linux): a report is background work, and on a busy
machine the intake's threads come first.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["NICENESS", "REPORT_CACHE_S", "ReportCache"]

REPORT_CACHE_S = 5.0
NICENESS = 10
_MAX_ENTRIES = 32
_T = TypeVar("_T")


class ReportCache(Generic[_T]):
    """Answers by key: fresh for ``ttl_s`` seconds, each computed by one caller at a time.

    Thread-safe. A computation that raises is not kept: the exception goes to the caller
    and to every caller that waited on it, and the next ask computes again.
    """

    def __init__(
        self,
        *,
        ttl_s: float = REPORT_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = _MAX_ENTRIES,
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._fresh: OrderedDict[Hashable, tuple[float, _T]] = OrderedDict()
        self._pending: dict[Hashable, Future[_T]] = {}
        # Made on first use: under gunicorn, in the worker process, after the fork.
        self._runner: ThreadPoolExecutor | None = None

    def get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """The answer for ``key``: kept, being computed by another caller, or computed now."""
        with self._lock:
            kept = self._fresh.get(key)
            if kept is not None and self._clock() - kept[0] < self._ttl_s:
                return kept[1]
            pending = self._pending.get(key)
            if pending is None:
                future: Future[_T] = Future()
                self._pending[key] = future
        if pending is not None:
            return pending.result()
        return self._compute(key, compute, future)

    def _compute(self, key: Hashable, compute: Callable[[], _T], future: Future[_T]) -> _T:
        try:
            value = self._background().submit(compute).result()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._fresh[key] = (self._clock(), value)
            self._fresh.move_to_end(key)
            while len(self._fresh) > self._max_entries:
                self._fresh.popitem(last=False)
        future.set_result(value)
        return value

    def _background(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._runner is None:
                self._runner = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="report", initializer=_lower_priority
                )
            return self._runner


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux schedules threads one by one)."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
