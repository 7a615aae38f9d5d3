"""Reports kept for a few seconds, and computed once however many ask at the same time.

A report over a big ledger takes seconds. Every open dashboard asks for one every few
seconds, so without a cache the reports pile up. Here the same question (the same
query) asked within ``ttl_s`` gets the answer already computed, and a question asked
while its answer is being computed waits for that computation instead of starting
another one. At most ``max_pending`` different questions are computed or waiting at
once; one more is refused with :class:`~strangler.sidecar.exceptions.ReportsBusy`, so
waiting reports never take all of the sidecar's threads from the intake. Where an
answer is computed is the caller's choice (the sidecar: strangler.sidecar.report_process).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

from strangler.sidecar.exceptions import ReportsBusy

__all__ = ["MAX_PENDING", "REPORT_CACHE_S", "ReportCache"]

REPORT_CACHE_S = 5.0
MAX_PENDING = 4
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
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._fresh: OrderedDict[Hashable, tuple[float, _T]] = OrderedDict()
        self._pending: dict[Hashable, Future[_T]] = {}

    def get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """The answer for ``key``: kept, being computed by another caller, or computed now.

        Raises ReportsBusy when ``max_pending`` other keys are being computed or waiting.
        """
        with self._lock:
            kept = self._fresh.get(key)
            if kept is not None and self._clock() - kept[0] < self._ttl_s:
                return kept[1]
            pending = self._pending.get(key)
            if pending is None:
                if len(self._pending) >= self._max_pending:
                    raise ReportsBusy(len(self._pending))
                future: Future[_T] = Future()
                self._pending[key] = future
        if pending is not None:
            return pending.result()
        return self._compute(key, compute, future)

    def _compute(self, key: Hashable, compute: Callable[[], _T], future: Future[_T]) -> _T:
        try:
            value = compute()
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
