"""Runs the executor's state loops, timing the handler calls that have a deadline.

The state loop is a generator. Where a Task's handler must end by a deadline (its
TimeoutSeconds or the execution's), the loop does not call the handler: it yields a
:class:`Call`, and :func:`drive` makes the call in its own thread and sends the result
(or throws the exception) back in. One watchdog thread holds every running call's
deadline. A call that returns in time costs no thread hand-off at all; one still running
at its deadline is abandoned: the watchdog throws the call's timeout error into the loop
on a worker thread, where the loop carries on, and the thread left in the handler drops
its result when (if ever) the handler returns, since Python cannot stop a thread.

A loop whose calls may time out must therefore not be driven by a thread that has to
return on time: :func:`run` with ``on_worker=True`` drives it on a worker while the
calling thread waits for the end.

A loop that has to wait (a Retry interval, a Wait state) yields a :class:`Park`: the
driving thread lets go of it, and the timer (:mod:`~strangler.instant.asl.timers`) hands
it to a worker when the wait is over, where it carries on. Waiting holds no thread.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from strangler.instant.asl import timers, workers

__all__ = ["Call", "Loop", "Park", "drive", "run", "start"]

Done = Callable[[Any, BaseException | None], None]
_RUNNING, _FINISHED, _EXPIRED = 0, 1, 2


class Call:
    """A handler call a loop asks its driver to make, due by ``deadline`` (monotonic).

    If the call is still running at the deadline, ``expired`` is raised in the loop. The
    driver and the watchdog keep the rest (the call's state, and the loop to resume and
    its ``done`` until the call finishes).
    """

    __slots__ = ("args", "deadline", "done", "expired", "handler", "loop", "state")

    def __init__(
        self,
        handler: Callable[..., Any],
        args: tuple[Any, ...],
        deadline: float,
        expired: type[BaseException],
    ) -> None:
        self.handler = handler
        self.args = args
        self.deadline = deadline
        self.expired = expired
        self.state = _RUNNING
        self.loop: Loop | None = None
        self.done: Done | None = None


class Park:
    """A wait a loop asks its driver for: resume me in ``seconds``, on any thread."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


Loop = Generator[Call | Park, Any, Any]


def drive(loop: Loop, done: Done, error: BaseException | None = None) -> None:
    """Run ``loop`` in this thread, making its calls, until it ends, parks or a call expires.

    ``done(value, None)`` or ``done(None, exception)`` receives the loop's end, from
    whichever thread reaches it. ``error`` is thrown into the loop first (a resumed loop).
    """
    value: Any = None
    while True:
        try:
            call = loop.send(value) if error is None else loop.throw(error)
        except StopIteration as stop:
            done(stop.value, None)
            return
        except BaseException as exc:  # the loop's own failure, handed to its waiter
            done(None, exc)
            return
        if isinstance(call, Park):
            timers.after(call.seconds, partial(workers.submit, partial(drive, loop, done)))
            return  # parked: a worker carries the loop on when the wait is over
        call.loop = loop
        call.done = done
        _WATCHDOG.arm(call)
        value = error = None
        try:
            value = call.handler(*call.args)
        except BaseException as exc:  # the handler's failure goes into the loop
            error = exc
        if not _WATCHDOG.disarm(call):
            return  # expired meanwhile: the loop goes on in another thread


def run(loop: Loop, *, on_worker: bool) -> Any:
    """Drive ``loop`` to its end and return its value or raise its exception.

    ``on_worker``: drive it on a worker thread while this thread waits, so that a call
    which never returns cannot hold this thread past the call's deadline.
    """
    outcome = _Outcome()
    if on_worker:
        start(loop, outcome.set)
    else:
        drive(loop, outcome.set)
    return outcome.get()


def start(loop: Loop, done: Done) -> None:
    """Drive ``loop`` on a worker thread; ``done`` receives its end (it must not raise)."""
    workers.submit(partial(drive, loop, done))


class _Outcome:
    """A loop's end, handed from the thread that reached it to the one waiting for it."""

    __slots__ = ("_error", "_ready", "_value")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any, error: BaseException | None) -> None:
        self._value = value
        self._error = error
        self._ready.release()

    def get(self) -> Any:
        self._ready.acquire()
        if self._error is not None:
            raise self._error
        return self._value


class _Watchdog:
    """Deadlines of running calls in a heap, looked at by one daemon thread.

    The thread sleeps until the earliest deadline it knows of and is woken only when a
    call with an earlier one arrives, so with equal timeouts a call costs a heap push
    under a lock and no wake-up: the thread wakes about once per timeout. Finished calls
    leave the heap when they reach its top.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Call]] = []
        self._order = itertools.count()
        self._wake_at = math.inf  # when the thread looks next; -inf while it is looking
        self._thread: threading.Thread | None = None

    def arm(self, call: Call) -> None:
        with self._lock:
            heap = self._heap
            while heap and heap[0][2].state == _FINISHED:
                heapq.heappop(heap)
            heapq.heappush(heap, (call.deadline, next(self._order), call))
            if call.deadline < self._wake_at:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._watch, name="asl-watchdog", daemon=True
                    )
                    self._thread.start()
                self._wakeup.notify()

    def disarm(self, call: Call) -> bool:
        """True if the call finished in time; False if it had expired (and was handed on)."""
        with self._lock:
            if call.state == _EXPIRED:
                return False
            call.state = _FINISHED
        call.loop = call.done = None
        call.args = ()  # the heap may hold the call a while: keep no event data alive
        return True

    def _watch(self) -> None:
        while True:
            with self._lock:
                expired = self._expired(time.monotonic())
                if not expired:
                    if self._heap:
                        self._wake_at = self._heap[0][0]
                        self._wakeup.wait(max(0.0, self._wake_at - time.monotonic()))
                    else:
                        self._wake_at = math.inf
                        self._wakeup.wait()
                    self._wake_at = -math.inf
                    continue
            for call in expired:
                assert call.loop is not None  # both kept until the call finishes
                assert call.done is not None
                workers.submit(partial(drive, call.loop, call.done, call.expired()))
                call.loop = call.done = None

    def _expired(self, now: float) -> list[Call]:
        """Pop what is past its deadline; the calls still running are marked expired.

        Finished calls with a later deadline stay, so that the thread keeps sleeping
        until then instead of being woken by the next call (:meth:`arm` drops them).
        """
        heap = self._heap
        expired = []
        while heap and heap[0][0] <= now:
            call = heapq.heappop(heap)[2]
            if call.state == _RUNNING:
                call.state = _EXPIRED
                expired.append(call)
        return expired


_WATCHDOG = _Watchdog()


def _forget_after_fork() -> None:
    """A forked child has no watchdog thread: start afresh (calls in flight are gone)."""
    global _WATCHDOG  # noqa: PLW0603 - the one watchdog of this process
    _WATCHDOG = _Watchdog()


os.register_at_fork(after_in_child=_forget_after_fork)
