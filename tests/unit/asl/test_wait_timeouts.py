"""Wait states on a fake clock, Task timeouts, and the execution's own TimeoutSeconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from strangler.instant.asl import LambdaContext, StateMachine
from tests.unit.asl.support import START, FakeClock, arn, details, machine, single, types


def wait_then_pass(**wait: Any) -> dict[str, Any]:
    return {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Next": "Done", **wait},
            "Done": {"Type": "Pass", "End": True},
        },
    }


def later(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("wait", "data", "slept"),
    [
        ({"Seconds": 10}, {}, [10.0]),
        ({"Seconds": 0}, {}, [0.0]),
        ({"SecondsPath": "$.delay"}, {"delay": 7}, [7.0]),
        ({"Timestamp": later(90)}, {}, [89.322]),
        ({"Timestamp": "2020-01-01T00:00:00Z"}, {}, [0.0]),
        ({"TimestampPath": "$.at"}, {"at": later(30)}, [29.322]),
        ({"TimestampPath": "$.at"}, {"at": "2026-01-02T04:04:05.678+01:00"}, [0.0]),
    ],
    ids=[
        "Seconds",
        "zero",
        "SecondsPath",
        "Timestamp",
        "past Timestamp",
        "TimestampPath",
        "offset",
    ],
)
def test_wait_sleeps_through_the_injected_sleeper(
    wait: dict[str, Any], data: dict[str, Any], slept: list[float]
) -> None:
    """A Wait state sleeps exactly as long as it says, on the injected clock and sleeper."""
    clock = FakeClock()
    execution = machine(wait_then_pass(**wait), clock=clock).execute(data)
    assert execution.status == "SUCCEEDED"
    assert slept == pytest.approx(clock.sleeps)
    assert types(execution)[1:3] == ["WaitStateEntered", "WaitStateExited"]
    entered, exited = execution.history[1]["timestamp"], execution.history[2]["timestamp"]
    assert pytest.approx(slept[0]) == (exited - entered).total_seconds()


@pytest.mark.parametrize(
    ("wait", "data", "cause"),
    [
        (
            {"SecondsPath": "$.input.waitSeconds"},
            {},
            "The SecondsPath parameter does not reference an input value: $.input.waitSeconds",
        ),
        (
            {"SecondsPath": "$.s"},
            {"s": 1.5},
            "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5",
        ),
        (
            {"SecondsPath": "$.s"},
            {"s": -1},
            "The SecondsPath parameter references a negative value: $.s == -1",
        ),
        (
            {"TimestampPath": "$.at"},
            {"at": "2016-12-05 21:29:29Z"},
            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
            "date-time format string: $.at == 2016-12-05 21:29:29Z",
        ),
    ],
    ids=["missing", "fraction", "negative", "bad timestamp"],
)
def test_bad_wait_inputs_are_runtime_errors(
    wait: dict[str, Any], data: dict[str, Any], cause: str
) -> None:
    """SecondsPath and TimestampPath values are checked as Step Functions checks them."""
    execution = machine(wait_then_pass(**wait)).execute(data)
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert execution.cause is not None
    assert execution.cause.endswith(cause)


def test_execution_timeout_on_the_injected_clock() -> None:
    """An execution longer than its TimeoutSeconds ends TIMED_OUT at the deadline."""
    clock = FakeClock()
    definition = {**wait_then_pass(Seconds=60), "TimeoutSeconds": 5}
    execution = machine(definition, clock=clock).execute({})
    assert (execution.status, execution.error) == ("TIMED_OUT", "States.Timeout")
    assert clock.sleeps == [5.0]
    assert types(execution) == ["ExecutionStarted", "WaitStateEntered", "ExecutionTimedOut"]
    assert details(execution.history[-1])["error"] == "States.Timeout"
    assert timedelta(seconds=5) == execution.stop_date - execution.start_date


def test_timeout_can_be_given_per_execution() -> None:
    """execute(timeout_seconds=...) overrides the definition's TimeoutSeconds."""
    clock = FakeClock()
    execution = machine(wait_then_pass(Seconds=60), clock=clock).execute({}, timeout_seconds=2.5)
    assert (execution.status, clock.sleeps) == ("TIMED_OUT", [2.5])


def test_retry_backoff_counts_against_the_execution_timeout() -> None:
    """A retry wait that would pass the execution's deadline times the execution out."""

    def fail(event: Any, context: LambdaContext) -> Any:
        raise RuntimeError("down")

    definition = {
        **single(
            {"Type": "Task", "Resource": arn("fail"), "Retry": [{"ErrorEquals": ["States.ALL"]}]}
        ),
        "TimeoutSeconds": 2,
    }
    clock = FakeClock()
    execution = machine(definition, {"fail": fail}, clock=clock).execute({})
    assert (execution.status, clock.sleeps) == ("TIMED_OUT", [1.0, 1.0])


class Blocking:
    """A handler that blocks until released (so no test really sleeps longer than needed)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, _event: Any, _context: LambdaContext) -> Any:
        self.calls += 1
        self.release.wait(timeout=10)
        return {"late": True}


@pytest.fixture
def blocking() -> Iterator[Blocking]:
    handler = Blocking()
    yield handler
    handler.release.set()


@pytest.mark.parametrize(
    ("state", "timed_out"),
    [
        ({"Resource": arn("block"), "TimeoutSeconds": 1}, "LambdaFunctionTimedOut"),
        (
            {
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "block"},
                "TimeoutSecondsPath": "$.timeout",
            },
            "TaskTimedOut",
        ),
    ],
    ids=["function arn + TimeoutSeconds", "lambda:invoke + TimeoutSecondsPath"],
)
def test_task_timeout_stops_waiting_for_the_handler(
    blocking: Blocking, state: dict[str, Any], timed_out: str
) -> None:
    """A handler running past TimeoutSeconds fails the state with States.Timeout on time."""
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                **state,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    started = time.monotonic()
    execution = machine(definition, {"block": blocking}).execute({"timeout": 1})
    elapsed = time.monotonic() - started
    assert (execution.status, execution.output) == ("SUCCEEDED", {"Error": "States.Timeout"})
    assert timed_out in types(execution)
    assert {
        key: value for key, value in details(execution.history[4]).items() if key == "error"
    } == {"error": "States.Timeout"}
    assert 0.9 < elapsed < 5


def test_a_missing_timeout_path_is_a_runtime_error() -> None:
    """TimeoutSecondsPath must find a value in the input."""
    state = {
        "Type": "Task",
        "Resource": arn("f"),
        "TimeoutSecondsPath": "$.NoSuchTimeoutSecondsPath",
    }
    execution = machine(single(state, "task"), {"f": lambda _event, _context: 1}).execute({})
    assert execution.cause is not None
    assert execution.cause.endswith(
        "Invalid path '$.NoSuchTimeoutSecondsPath' : No results for path: "
        "$['NoSuchTimeoutSecondsPath']"
    )


def test_execution_timeout_while_a_handler_runs(blocking: Blocking) -> None:
    """The execution's deadline also bounds the wait for a running handler (real clock)."""
    sm = StateMachine(single({"Type": "Task", "Resource": arn("block")}), {"block": blocking})
    started = time.monotonic()
    execution = sm.execute({}, timeout_seconds=0.3)
    assert execution.status == "TIMED_OUT"
    assert 0.25 < time.monotonic() - started < 3
    assert types(execution)[-1] == "ExecutionTimedOut"


def test_inline_task_timeouts_judge_the_call_when_it_returns() -> None:
    """task_timeouts="inline" runs the handler in the calling thread; too late is a timeout."""
    threads: list[threading.Thread] = []

    def slow(_event: Any, _context: LambdaContext) -> Any:
        threads.append(threading.current_thread())
        time.sleep(1.05)
        return "too late"

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": arn("slow"),
                "TimeoutSeconds": 1,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    execution = machine(definition, {"slow": slow}, task_timeouts="inline").execute({})
    assert execution.output == {"Error": "States.Timeout"}
    assert threads == [threading.current_thread()]
    assert "LambdaFunctionTimedOut" in types(execution)


def test_inline_execution_deadline_is_judged_on_return() -> None:
    """With inline calls, a handler outliving the execution's deadline times it out."""

    def slow(_event: Any, _context: LambdaContext) -> Any:
        time.sleep(0.1)
        return 1

    sm = StateMachine(
        single({"Type": "Task", "Resource": arn("slow")}), {"slow": slow}, task_timeouts="inline"
    )
    assert sm.execute({}, timeout_seconds=0.05).status == "TIMED_OUT"


def test_task_timeouts_mode_is_checked() -> None:
    """Only the two documented modes are accepted."""
    with pytest.raises(ValueError, match="task_timeouts"):
        StateMachine(single({"Type": "Pass"}), {}, task_timeouts="never")


def caught_task(prefix: str, function: str, timeout: int) -> dict[str, Any]:
    """A Task with TimeoutSeconds whose States.Timeout is caught into a Pass state."""
    return {
        "StartAt": f"{prefix}T",
        "States": {
            f"{prefix}T": {
                "Type": "Task",
                "Resource": arn(function),
                "TimeoutSeconds": timeout,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": f"{prefix}Caught"}],
                "End": True,
            },
            f"{prefix}Caught": {"Type": "Pass", "Result": "timed out", "End": True},
        },
    }


def test_untimed_handlers_run_in_the_calling_thread() -> None:
    """Without any timeout to enforce, worker mode makes no thread hand-off at all."""
    threads: list[threading.Thread] = []

    def record(_event: Any, _context: LambdaContext) -> Any:
        threads.append(threading.current_thread())
        return 1

    execution = machine(single({"Type": "Task", "Resource": arn("f")}), {"f": record}).execute({})
    assert (execution.status, threads) == ("SUCCEEDED", [threading.current_thread()])


def test_never_returning_handlers_in_branches_and_iterations_time_out(blocking: Blocking) -> None:
    """A Task that never returns fails at its deadline inside a Parallel branch and inside
    a one-at-a-time Map, and each goes on to its Catch while the handlers still block."""
    mapped = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": caught_task("Item", "block", 1),
                "End": True,
            }
        },
    }
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [caught_task("Branch", "block", 1), mapped],
                "End": True,
            }
        },
    }
    started = time.monotonic()
    execution = machine(definition, {"block": blocking}).execute([1])
    elapsed = time.monotonic() - started
    assert (execution.status, execution.output) == ("SUCCEEDED", ["timed out", ["timed out"]])
    assert (blocking.calls, blocking.release.is_set()) == (2, False)
    assert types(execution).count("LambdaFunctionTimedOut") == 2
    assert 0.9 < elapsed < 5


def test_a_never_returning_handler_does_not_hold_later_executions(blocking: Blocking) -> None:
    """After an execution timed out in a handler that still blocks, the next ones run at once."""
    calls: list[str] = []

    def handler(event: Any, _context: LambdaContext) -> Any:
        if event == "block":
            return blocking(event, _context)
        calls.append(event)
        return event

    sm = StateMachine(single({"Type": "Task", "Resource": arn("f")}), {"f": handler})
    assert sm.execute("block", timeout_seconds=0.1).status == "TIMED_OUT"
    started = time.monotonic()
    outputs = [sm.execute(f"o-{n}", timeout_seconds=5).output for n in range(5)]
    assert (outputs, blocking.release.is_set()) == ([f"o-{n}" for n in range(5)], False)
    assert calls == outputs
    assert time.monotonic() - started < 2
