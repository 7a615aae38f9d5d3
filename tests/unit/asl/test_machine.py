"""StateMachine and Execution as callers use them: arguments, records, threads."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from strangler.instant.asl import ExecutionError, LambdaContext, StateMachine
from tests.unit.asl.support import START, arn, left_to_the_collector, machine, single


def add_one(event: Any, context: LambdaContext) -> Any:
    return {"n": event["n"] + 1}


STEP = single({"Type": "Task", "Resource": arn("add")})


def test_execution_record_fields() -> None:
    """An execution carries its names, ARNs, status, input, output and dates."""
    sm = machine(STEP, {"add": add_one}, name="orders")
    execution = sm.execute({"n": 1}, name="order-1")
    assert execution.name == "order-1"
    assert (
        execution.execution_arn == "arn:aws:states:us-east-1:123456789012:execution:orders:order-1"
    )
    assert (
        execution.state_machine_arn == "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
    )
    assert (
        execution.status,
        execution.input,
        execution.output,
    ) == ("SUCCEEDED", {"n": 1}, {"n": 2})
    assert (execution.error, execution.cause, execution.succeeded) == (None, None, True)
    assert (execution.start_date, execution.stop_date) == (START, START)


def test_describe_looks_like_describe_execution() -> None:
    """describe() gives DescribeExecution's fields, with input and output as JSON text."""
    execution = machine(STEP, {"add": add_one}).execute({"n": 1}, name="x")
    assert {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": "x",
        "status": "SUCCEEDED",
        "startDate": START,
        "stopDate": START,
        "input": '{"n":1}',
        "inputDetails": {"included": True},
        "output": '{"n":2}',
        "outputDetails": {"included": True},
        "redriveCount": 0,
    } == execution.describe()
    failed = machine({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}).execute({})
    assert (
        failed.describe()["status"],
        failed.describe()["error"],
        "output" in failed.describe(),
    ) == ("FAILED", "E", False)


def test_default_names_are_uuids_from_the_rng() -> None:
    """Without a name an execution gets a UUID, repeatable with a seeded rng."""
    first = machine(STEP, {"add": add_one}, seed=1).execute({"n": 1}).name
    again = machine(STEP, {"add": add_one}, seed=1).execute({"n": 1}).name
    assert first == again
    assert len(first) == 36


@pytest.mark.parametrize(
    "name", ["", "x" * 81, "has space", "a/b", "a:b", "tab\there", "brace{"], ids=repr
)
def test_invalid_execution_names_are_refused(name: str) -> None:
    """Names follow Step Functions' rules; a bad one is an ExecutionError before anything runs."""
    with pytest.raises(ExecutionError, match="invalid execution name"):
        machine(STEP, {"add": add_one}).execute({"n": 1}, name=name)


def test_input_must_be_json() -> None:
    """An input JSON cannot hold is refused with ExecutionError."""
    with pytest.raises(ExecutionError, match="JSON value"):
        machine(STEP, {"add": add_one}).execute({"when": object()})


@pytest.mark.parametrize(
    ("given", "seen"),
    [({"n": 1, "tags": ["a"]}, {"n": 1, "tags": ["a"]}), ({"n": 1, "tags": ("a",)}, None)],
    ids=["plain-copied", "tuple-encoded"],
)
def test_the_input_is_recorded_as_its_json_text_gives_it(
    given: dict[str, Any], seen: dict[str, Any] | None
) -> None:
    """The run's input is what decoding the input's JSON gives (a tuple becomes a list),
    unshared: the caller changing it afterwards changes neither the record nor the
    ExecutionStarted event, written when the history is read."""
    execution = machine(single({"Type": "Pass", "End": True})).execute(given)
    given["n"] = 2
    expected = seen or {"n": 1, "tags": ["a"]}
    assert execution.input == expected
    assert execution.output == expected
    assert json.loads(execution.history[0]["executionStartedEventDetails"]["input"]) == expected


def test_outputs_are_independent_copies() -> None:
    """Changing one execution's output does not leak into the definition or the next run."""
    sm = machine(single({"Type": "Pass", "Result": {"list": [1]}}))
    first = sm.execute({})
    first.output["list"].append(2)
    assert sm.execute({}).output == {"list": [1]}
    assert sm.definition["States"]["S"]["Result"] == {"list": [1]}


def test_one_machine_runs_executions_from_many_threads() -> None:
    """A StateMachine is safe to share: concurrent executions keep their own data."""
    sm = StateMachine(STEP, {"add": add_one})
    results: dict[int, Any] = {}

    def go(n: int) -> None:
        results[n] = sm.execute({"n": n}, name=f"run-{n}").output

    threads = [threading.Thread(target=go, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert {n: {"n": n + 1} for n in range(16)} == results


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"name": "bad name"}, ValueError, "state machine name"),
        ({"region": "mars"}, ValueError, "region"),
        ({"account_id": "12"}, ValueError, "account id"),
    ],
    ids=["max_workers", "name", "region", "account"],
)
def test_constructor_arguments_are_checked(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad constructor arguments raise at once with a message naming the argument."""
    with pytest.raises(error, match=message):
        StateMachine(STEP, {"add": add_one}, **options)


def test_resources_must_be_callables() -> None:
    """Each resource must be a handler callable."""
    with pytest.raises(TypeError, match="callable"):
        StateMachine(STEP, {"add": "not a function"})  # type: ignore[dict-item]


def test_region_and_account_shape_arns() -> None:
    """Region and account id flow into the state machine, execution and function ARNs."""
    seen: list[str] = []

    def record(event: Any, context: LambdaContext) -> Any:
        seen.append(context.invoked_function_arn)
        return None

    definition = single(
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "record"},
        }
    )
    sm = StateMachine(definition, {"record": record}, region="eu-west-1", account_id="111122223333")
    execution = sm.execute({})
    assert execution.execution_arn.startswith("arn:aws:states:eu-west-1:111122223333:execution:")
    assert seen == ["arn:aws:lambda:eu-west-1:111122223333:function:record"]


def test_a_finished_execution_leaves_nothing_to_the_garbage_collector() -> None:
    """Once its caller drops it, an execution (its run, history and every state's values)
    is freed by reference counting: a routing process's full collections, which stop
    every thread, do not grow with the orders it has run."""
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Task", "Resource": arn("double"), "Next": "Big?"},
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$", "NumericGreaterThan": 5, "Next": "Wait"}],
                "Default": "Done",
            },
            "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    built = machine(definition, {arn("double"): lambda event, _context: event * 2})
    status, found = left_to_the_collector(lambda: built.execute(3).status)
    assert status == "SUCCEEDED"
    assert found == []
