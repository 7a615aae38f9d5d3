"""Daemon worker threads that run the executor's loops.

Workers are daemon threads (a handler that never returns never blocks interpreter exit),
are reused while idle, and end after :data:`IDLE_SECONDS` without work. A worker whose
handler call timed out stays with that call until it returns, and is then reused.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "MAX_IDLE", "submit"]

IDLE_SECONDS = 30.0
MAX_IDLE = 64


class _Worker:
    __slots__ = ("inbox",)

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
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
            job()
            with _lock:
                if len(_idle) >= MAX_IDLE:
                    return
                _idle.append(self)


_lock = threading.Lock()
_idle: list[_Worker] = []


def _forget_after_fork() -> None:
    """A forked child has none of its parent's worker threads: start afresh."""
    global _lock  # noqa: PLW0603 - the lock may have been held by a thread that is gone
    _lock = threading.Lock()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def submit(job: Callable[[], None]) -> None:
    """Run ``job`` on an idle worker (or a new one); it must not raise."""
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
    worker.inbox.put(job)
