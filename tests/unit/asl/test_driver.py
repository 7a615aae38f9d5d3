"""The driver: handler calls made for a loop, timed by the watchdog, abandoned when late."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from strangler.instant.asl.driver import Call, Loop, run


class Expired(Exception):
    """What the tests' calls raise into their loop when their deadline passes."""


class Stuck:
    """A handler that blocks until the test ends, recording the thread it ran on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self) -> str:
        self.threads.append(threading.current_thread())
        self.release.wait(timeout=10)
        return "late"


@pytest.fixture
def stuck() -> Iterator[Stuck]:
    handler = Stuck()
    yield handler
    handler.release.set()


def calling(handler: Callable[[], Any], seconds: float, trail: list[Any]) -> Loop:
    """A loop that makes one call due in ``seconds`` and records what came back."""
    try:
        value = yield Call(handler, (), time.monotonic() + seconds, Expired)
    except Expired:
        trail.append(("expired", threading.current_thread()))
        return "timed out"
    except ValueError as exc:
        trail.append(("raised", str(exc)))
        return "failed"
    trail.append(("returned", value))
    return value


def test_a_call_in_time_sends_its_result_into_the_loop() -> None:
    """A call that returns before its deadline gives the loop its value, on one thread."""
    trail: list[Any] = []
    assert run(calling(lambda: "ok", 5, trail), on_worker=False) == "ok"
    assert trail == [("returned", "ok")]


def test_a_handler_exception_is_raised_in_the_loop() -> None:
    """The handler's exception reaches the loop at the point of the call."""

    def broken() -> None:
        raise ValueError("no stock")

    trail: list[Any] = []
    assert run(calling(broken, 5, trail), on_worker=True) == "failed"
    assert trail == [("raised", "no stock")]


def test_the_loops_own_exception_is_raised_to_the_waiter() -> None:
    """An exception the loop does not handle is raised by run in the waiting thread."""

    def failing() -> Loop:
        yield Call(lambda: None, (), time.monotonic() + 5, Expired)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run(failing(), on_worker=True)


def test_a_call_that_never_returns_expires_at_its_deadline(stuck: Stuck) -> None:
    """The loop goes on in another thread at the deadline; the stuck thread is left behind."""
    trail: list[Any] = []
    started = time.monotonic()
    assert run(calling(stuck, 0.1, trail), on_worker=True) == "timed out"
    elapsed = time.monotonic() - started
    [(what, resumed_on)] = trail
    assert (what, resumed_on in stuck.threads) == ("expired", False)
    assert threading.current_thread() not in stuck.threads
    assert 0.09 < elapsed < 2


def test_a_late_result_is_dropped(stuck: Stuck) -> None:
    """When the abandoned handler finally returns, the loop is not resumed a second time."""
    trail: list[Any] = []
    run(calling(stuck, 0.05, trail), on_worker=True)
    stuck.release.set()
    time.sleep(0.05)
    assert [what for what, _ in trail] == ["expired"]


def test_an_abandoned_call_does_not_hold_later_loops(stuck: Stuck) -> None:
    """While a timed-out handler still blocks its thread, new loops run and end at once."""
    run(calling(stuck, 0.05, []), on_worker=True)
    trail: list[Any] = []
    started = time.monotonic()
    results = [run(calling(partial(int, n), 5, trail), on_worker=True) for n in range(20)]
    assert (list(range(20)), False) == (results, stuck.release.is_set())
    assert time.monotonic() - started < 1


def test_an_earlier_deadline_arriving_later_still_fires_on_time(stuck: Stuck) -> None:
    """The watchdog, asleep until a far deadline, wakes for a nearer one that comes after."""
    far: list[Any] = []
    waiter = threading.Thread(
        target=run, args=(calling(stuck, 5, far),), kwargs={"on_worker": True}
    )
    waiter.start()
    while not stuck.threads:
        time.sleep(0.005)
    near_handler = Stuck()
    try:
        started = time.monotonic()
        assert run(calling(near_handler, 0.1, []), on_worker=True) == "timed out"
        assert time.monotonic() - started < 2
    finally:
        near_handler.release.set()
        stuck.release.set()
        waiter.join(timeout=5)
    assert far == [("returned", "late")]


def test_a_forked_child_gets_its_own_workers_and_watchdog(stuck: Stuck) -> None:
    """After fork, loops run and calls expire in the child, whose parent's threads are gone."""
    run(calling(stuck, 0.05, []), on_worker=True)  # the parent has a watchdog and workers
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            handler = Stuck()
            code = 0 if run(calling(handler, 0.05, []), on_worker=True) == "timed out" else 2
        finally:
            os._exit(code)
    give_up = time.monotonic() + 10
    while (ended := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < give_up:
        time.sleep(0.01)
    if ended == (0, 0):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung: its loop never ran")
    assert os.waitstatus_to_exitcode(ended[1]) == 0
