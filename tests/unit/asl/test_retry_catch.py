"""Retry (timing and attempt counts on a fake clock) and Catch (routing and ResultPath)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest

from strangler.instant.asl import LambdaContext
from strangler.instant.asl.errors import TASK_FAILED, TIMEOUT, StatesFailure, error_matches
from tests.unit.asl.support import FakeClock, arn, details, machine, run, types


class Flaky:
    """A handler that raises the given errors in turn, then returns ``{"ok": True}``."""

    def __init__(self, *errors: str) -> None:
        self.errors: Iterator[str] = iter(errors)
        self.calls = 0
        self.retry_counts: list[int] = []

    def __call__(self, event: Any, _context: LambdaContext) -> Any:
        self.calls += 1
        self.retry_counts.append(event.get("retry", -1) if isinstance(event, dict) else -1)
        error = next(self.errors, None)
        if error is None:
            return {"ok": True}
        raise type(error, (Exception,), {})(f"{error} #{self.calls}")


def task(**fields: Any) -> dict[str, Any]:
    """A machine with Task 'T' calling 'flaky', and 'Caught' / 'Other' states to catch into."""
    state = {"Type": "Task", "Resource": arn("flaky"), "End": True, **fields}
    return {
        "StartAt": "T",
        "States": {
            "T": state,
            "Caught": {"Type": "Pass", "End": True},
            "Other": {"Type": "Pass", "Result": "other", "End": True},
        },
    }


@pytest.mark.parametrize(
    ("retrier", "failures", "sleeps", "calls", "status"),
    [
        ({"ErrorEquals": ["E"]}, 3, [1.0, 2.0, 4.0], 4, "SUCCEEDED"),
        ({"ErrorEquals": ["E"]}, 4, [1.0, 2.0, 4.0], 4, "FAILED"),
        ({"ErrorEquals": ["E"], "MaxAttempts": 0}, 1, [], 1, "FAILED"),
        (
            {"ErrorEquals": ["E"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 1.5},
            2,
            [3.0, 4.5],
            3,
            "SUCCEEDED",
        ),
        (
            {"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 5, "MaxDelaySeconds": 5},
            5,
            [2.0, 4.0, 5.0, 5.0, 5.0],
            6,
            "SUCCEEDED",
        ),
        ({"ErrorEquals": ["E"], "BackoffRate": 1}, 2, [1.0, 1.0], 3, "SUCCEEDED"),
        ({"ErrorEquals": ["States.ALL"]}, 1, [1.0], 2, "SUCCEEDED"),
        ({"ErrorEquals": ["States.TaskFailed"]}, 1, [1.0], 2, "SUCCEEDED"),
        ({"ErrorEquals": ["Other"]}, 1, [], 1, "FAILED"),
    ],
    ids=[
        "defaults succeed on 4th",
        "defaults exhausted",
        "MaxAttempts 0",
        "aws doc example",
        "MaxDelaySeconds caps",
        "BackoffRate 1",
        "States.ALL",
        "States.TaskFailed",
        "not matching",
    ],
)
def test_retry_timing_and_attempts(
    retrier: dict[str, Any], failures: int, sleeps: list[float], calls: int, status: str
) -> None:
    """Retries wait IntervalSeconds * BackoffRate^n (capped), at most MaxAttempts times."""
    clock = FakeClock()
    flaky = Flaky(*["E"] * failures)
    execution = machine(task(Retry=[retrier]), {"flaky": flaky}, clock=clock).execute({})
    assert (status, sleeps, calls) == (execution.status, clock.sleeps, flaky.calls)
    assert calls == types(execution).count("LambdaFunctionScheduled")


def test_full_jitter_draws_from_the_injected_rng() -> None:
    """JitterStrategy FULL waits a random fraction of the backoff, repeatable with a seed."""
    retrier = {"ErrorEquals": ["E"], "IntervalSeconds": 10, "JitterStrategy": "FULL"}
    runs = []
    for _ in range(2):
        clock = FakeClock()
        machine(
            task(Retry=[retrier]), {"flaky": Flaky("E", "E", "E")}, clock=clock, seed=3
        ).execute({})
        runs.append(clock.sleeps)
    assert runs[0] == runs[1]
    assert all(0 <= wait <= cap for wait, cap in zip(runs[0], [10, 20, 40], strict=True))
    assert runs[0] != [10.0, 20.0, 40.0]


def test_each_retrier_counts_its_own_attempts() -> None:
    """The first matching retrier decides, even when it has no attempts left (AWS doc example)."""
    retry = [
        {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "MaxAttempts": 2},
        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5},
    ]
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    clock = FakeClock()
    flaky = Flaky("ErrorA", "ErrorB", "ErrorC", "ErrorB", "ErrorB")
    execution = machine(task(Retry=retry, Catch=catch), {"flaky": flaky}, clock=clock).execute({})
    assert clock.sleeps == [1.0, 2.0, 5.0]
    assert flaky.calls == 4
    assert (execution.status, execution.output["Error"]) == ("SUCCEEDED", "ErrorB")


def test_timeouts_match_states_timeout_but_not_task_failed() -> None:
    """States.TaskFailed matches every task error except States.Timeout."""
    assert error_matches((TASK_FAILED,), StatesFailure("Boom", None))
    assert not error_matches((TASK_FAILED,), StatesFailure(TIMEOUT, None))
    assert error_matches(("States.ALL",), StatesFailure(TIMEOUT, None))
    assert not error_matches(("States.ALL",), StatesFailure("States.Runtime", None, terminal=True))


def test_retry_count_is_visible_in_the_context_object() -> None:
    """$$.State.RetryCount counts the retries of the current state."""
    flaky = Flaky("E", "E")
    definition = task(Parameters={"retry.$": "$$.State.RetryCount"}, Retry=[{"ErrorEquals": ["E"]}])
    run(definition, {}, {"flaky": flaky})
    assert flaky.retry_counts == [0, 1, 2]


@pytest.mark.parametrize(
    ("catcher", "expected"),
    [
        ({"ErrorEquals": ["States.ALL"], "Next": "Caught"}, {"Error": "E", "Cause": ANY}),
        (
            {"ErrorEquals": ["E"], "Next": "Caught", "ResultPath": "$.error"},
            {"keep": 1, "error": {"Error": "E", "Cause": ANY}},
        ),
        ({"ErrorEquals": ["E"], "Next": "Caught", "ResultPath": None}, {"keep": 1}),
        ({"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}, {"Error": "E", "Cause": ANY}),
    ],
    ids=["default ResultPath", "ResultPath field", "ResultPath null", "TaskFailed"],
)
def test_catch_routes_and_places_the_error_output(
    catcher: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A matching catcher sends {Error, Cause} on, placed by its ResultPath; no OutputPath."""
    execution = run(
        task(Catch=[catcher], OutputPath="$.nothing"), {"keep": 1}, {"flaky": Flaky("E")}
    )
    assert ("SUCCEEDED", expected) == (execution.status, execution.output)
    assert types(execution)[5:7] == ["TaskStateExited", "PassStateEntered"]


def test_catchers_are_tried_in_order() -> None:
    """The first catcher whose ErrorEquals matches wins."""
    catch = [
        {"ErrorEquals": ["Nope"], "Next": "Caught"},
        {"ErrorEquals": ["E"], "Next": "Other"},
        {"ErrorEquals": ["States.ALL"], "Next": "Caught"},
    ]
    assert run(task(Catch=catch), {}, {"flaky": Flaky("E")}).output == "other"


def test_retry_happens_before_catch() -> None:
    """Retriers are used up before a catcher takes the error."""
    clock = FakeClock()
    flaky = Flaky("E", "E", "E")
    definition = task(
        Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 2}],
        Catch=[{"ErrorEquals": ["E"], "Next": "Caught"}],
    )
    execution = machine(definition, {"flaky": flaky}, clock=clock).execute({})
    assert (flaky.calls, clock.sleeps, execution.output["Error"]) == (3, [1.0, 2.0], "E")


def test_uncaught_task_failure_ends_the_execution_without_state_exit() -> None:
    """An uncaught failure goes straight from the failed attempt to ExecutionFailed."""
    execution = run(task(), {}, {"flaky": Flaky("E")})
    assert types(execution) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "ExecutionFailed",
    ]
    assert {"error": "E", "cause": execution.cause} == details(execution.history[-1])


def test_fail_state_errors_can_come_from_paths_and_intrinsics() -> None:
    """Fail takes Error/Cause as written or from ErrorPath/CausePath (paths or intrinsics)."""
    definition = {
        "StartAt": "F",
        "States": {
            "F": {
                "Type": "Fail",
                "ErrorPath": "$.code",
                "CausePath": "States.Format('order {} failed', $.id)",
            }
        },
    }
    execution = run(definition, {"code": "Declined", "id": "o-1"})
    assert (
        execution.status,
        execution.error,
        execution.cause,
    ) == ("FAILED", "Declined", "order o-1 failed")
    assert types(execution) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]


def test_fail_state_without_error_or_cause() -> None:
    """A bare Fail state fails the execution with neither error nor cause."""
    execution = run({"StartAt": "F", "States": {"F": {"Type": "Fail"}}})
    assert (execution.status, execution.error, execution.cause) == ("FAILED", None, None)
    assert details(execution.history[-1]) == {}


def test_missing_error_path_is_a_runtime_error() -> None:
    """An ErrorPath that matches nothing fails with States.Runtime, worded like AWS."""
    definition = {"StartAt": "fail", "States": {"fail": {"Type": "Fail", "ErrorPath": "$.ErrorX"}}}
    execution = run(definition, {"a": 1})
    assert execution.error == "States.Runtime"
    assert execution.cause is not None
    assert execution.cause.endswith(
        "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the "
        "input '{\"a\":1}'"
    )
