"""Waiting parks an execution: no thread is held, and the Retry schedule is kept exactly."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import pytest

from strangler.instant.asl import Execution, LambdaContext, StateMachine
from strangler.instant.exceptions import ExecutionError
from tests.unit.asl.support import arn

RETRY = {
    "ErrorEquals": ["Flaky"],
    "IntervalSeconds": 1,
    "BackoffRate": 2.0,
    "MaxAttempts": 3,
    "MaxDelaySeconds": 3,
    "JitterStrategy": "FULL",
}


class Flaky(Exception):
    """The error the test handler always raises."""


class Fraction(random.Random):
    """Full jitter draws this fraction every time, so the schedule is known in advance."""

    def __init__(self, fraction: float) -> None:
        super().__init__(3)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


def always_fails(_event: Any, _context: LambdaContext) -> Any:
    raise Flaky("down")


def failing_machine(fraction: float) -> StateMachine:
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": arn("f"), "Retry": [RETRY], "End": True}},
    }
    return StateMachine(definition, {arn("f"): always_fails}, rng=Fraction(fraction))


def seconds_between(history: list[dict[str, Any]], first: str, then: str) -> list[float]:
    """Seconds from each ``first`` event to the ``then`` event after it."""
    gaps, since = [], None
    for event in history:
        if event["type"] == first:
            since = event["timestamp"]
        elif event["type"] == then and since is not None:
            gaps.append((event["timestamp"] - since).total_seconds())
            since = None
    return gaps


def test_retries_follow_the_schedule_without_holding_the_thread() -> None:
    """Attempts are IntervalSeconds x BackoffRate^n apart (capped, jittered); the caller is free."""
    machine = failing_machine(0.1)  # delays 0.1 x (1, 2, min(4, 3)) = 0.1, 0.2, 0.3 s
    began = time.monotonic()
    futures = [machine.start({}, on_this_thread=True) for _ in range(20)]
    assert [f.done() for f in futures] == [False] * 20  # handed back before any backoff
    executions = [f.result(timeout=10) for f in futures]
    total_s = time.monotonic() - began
    assert total_s < 6.0  # the waits overlap: 0.6 s each, not 12 s in a row
    for execution in executions:
        assert execution.status == "FAILED"
        gaps = seconds_between(execution.history, "LambdaFunctionFailed", "LambdaFunctionScheduled")
        assert len(gaps) == 3
        for gap, expected in zip(gaps, (0.1, 0.2, 0.3), strict=True):
            # Never early; how late a timer fires depends on the machine's load.
            assert expected <= gap < expected + 1.0, (gaps, expected)


def test_a_wait_state_parks_and_resumes_on_a_worker() -> None:
    """A Wait state lets its thread go and the execution goes on in another thread."""
    threads: list[str] = []

    def where(_event: Any, _context: LambdaContext) -> Any:
        threads.append(threading.current_thread().name)
        return {}

    definition = {
        "StartAt": "Before",
        "States": {
            "Before": {"Type": "Task", "Resource": arn("w"), "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "After"},
            "After": {"Type": "Task", "Resource": arn("w"), "End": True},
        },
    }
    machine = StateMachine(definition, {arn("w"): where})
    future: Future[Execution] = machine.start({}, on_this_thread=True)
    assert not future.done()
    assert threads == [threading.current_thread().name]
    execution = future.result(timeout=10)
    assert execution.status == "SUCCEEDED"
    assert threads[1] == "asl-worker"
    waited = seconds_between(execution.history, "WaitStateEntered", "WaitStateExited")
    assert 1.0 <= waited[0] < 2.5  # never early; lateness depends on the machine's load


def test_execute_still_returns_the_finished_record() -> None:
    """execute() waits for a parked execution's end, as before."""
    execution = failing_machine(0.01).execute({})
    assert (execution.status, execution.error) == ("FAILED", "Flaky")
    started: datetime = execution.start_date
    assert execution.stop_date > started


def test_start_then_calls_back_at_the_end_on_the_thread_that_reaches_it() -> None:
    """start_then's callback gets the record: at once on this thread when nothing waits,
    from the worker that resumes a parked execution otherwise; bad input raises here."""
    ends: list[tuple[Execution | None, BaseException | None, str]] = []
    ended = threading.Event()

    def then(execution: Execution | None, error: BaseException | None) -> None:
        ends.append((execution, error, threading.current_thread().name))
        ended.set()

    quick = StateMachine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {})
    quick.start_then({"a": 1}, then, on_this_thread=True)
    assert len(ends) == 1  # called before start_then returned
    execution, error, thread = ends.pop()
    assert error is None
    assert execution is not None
    assert (execution.status, execution.output) == ("SUCCEEDED", {"a": 1})
    assert thread == threading.current_thread().name

    ended.clear()
    failing_machine(0.01).start_then({}, then, on_this_thread=True)
    assert ends == []  # parked for its first retry: this thread is free
    assert ended.wait(10)
    execution, error, thread = ends.pop()
    assert error is None
    assert execution is not None
    assert execution.status == "FAILED"
    assert thread == "asl-worker"

    with pytest.raises(ExecutionError, match="invalid execution name"):
        quick.start_then({}, then, name="no spaces allowed")
    assert ends == []
