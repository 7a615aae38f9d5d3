"""Input and output processing: InputPath, Parameters, ResultSelector, ResultPath, OutputPath."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.asl.support import START, arn, machine, run, single, types

INPUT: dict[str, Any] = {
    "order": {"id": "o-1", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}]},
    "flag": True,
}


def echo(event: Any, context: Any) -> Any:
    return {"echo": event, "extra": 1}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"Type": "Pass"}, INPUT),
        ({"Type": "Pass", "InputPath": "$.order.id"}, "o-1"),
        ({"Type": "Pass", "InputPath": None}, {}),
        ({"Type": "Pass", "OutputPath": None}, {}),
        ({"Type": "Pass", "Result": {"r": 1}}, {"r": 1}),
        ({"Type": "Pass", "Result": 5, "ResultPath": "$.five"}, {**INPUT, "five": 5}),
        ({"Type": "Pass", "Result": 5, "ResultPath": None}, INPUT),
        ({"Type": "Pass", "Result": 5, "ResultPath": "$.flag"}, {**INPUT, "flag": 5}),
        (
            {"Type": "Pass", "Result": 5, "ResultPath": "$.order.total"},
            {**INPUT, "order": {**INPUT["order"], "total": 5}},
        ),
        ({"Type": "Pass", "Result": 5, "ResultPath": "$.a.b"}, {**INPUT, "a": {"b": 5}}),
        (
            {"Type": "Pass", "Parameters": {"id.$": "$.order.id", "fixed": [1, {"x": None}]}},
            {"id": "o-1", "fixed": [1, {"x": None}]},
        ),
        (
            {"Type": "Pass", "InputPath": "$.order", "Parameters": {"first.$": "$.items[0].sku"}},
            {"first": "a"},
        ),
        (
            {"Type": "Pass", "Parameters": {"skus.$": "$.order.items[*].sku"}},
            {"skus": ["a", "b"]},
        ),
        (
            {"Type": "Pass", "Parameters": {"big.$": "$.order.items[?(@.qty > 1)].sku"}},
            {"big": ["b"]},
        ),
        (
            {"Type": "Pass", "Parameters": {"n.$": "$.order.items.length()"}},
            {"n": 2},
        ),
        (
            {"Type": "Pass", "Parameters": {"nested": {"list": [{"id.$": "$.order.id"}]}}},
            {"nested": {"list": [{"id": "o-1"}]}},
        ),
        (
            {"Type": "Pass", "Parameters": {"msg.$": "States.Format('order {}', $.order.id)"}},
            {"msg": "order o-1"},
        ),
        (
            {"Type": "Pass", "Parameters": {"p.$": "$.order.id"}, "ResultPath": "$.p"},
            {**INPUT, "p": {"p": "o-1"}},
        ),
        ({"Type": "Pass", "Result": {"a": {"b": 2}}, "OutputPath": "$.a.b"}, 2),
        ({"Type": "Pass", "OutputPath": "$.order.items[*].qty"}, [1, 3]),
        ({"Type": "Succeed", "InputPath": "$.order", "OutputPath": "$.id"}, "o-1"),
        ({"Type": "Wait", "Seconds": 0, "InputPath": "$.flag"}, True),
    ],
    ids=lambda value: str(value)[:70] if isinstance(value, dict) else None,
)
def test_pass_and_friends_process_paths_in_order(state: dict[str, Any], expected: Any) -> None:
    """InputPath, Parameters, Result, ResultPath and OutputPath apply in the language's order."""
    execution = run(single(state), INPUT)
    assert execution.status == "SUCCEEDED", execution.cause
    assert expected == execution.output


def test_task_processing_order() -> None:
    """A Task's result goes through ResultSelector, then ResultPath, then OutputPath."""
    state = {
        "Type": "Task",
        "Resource": arn("echo"),
        "InputPath": "$.order",
        "Parameters": {"sku.$": "$.items[1].sku", "const": 1},
        "ResultSelector": {"got.$": "$.echo.sku", "extra.$": "$.extra"},
        "ResultPath": "$.order.result",
        "OutputPath": "$.order",
    }
    execution = run(single(state), INPUT, {"echo": echo})
    expected = {**INPUT["order"], "result": {"got": "b", "extra": 1}}
    assert expected == execution.output
    scheduled = execution.history[2]["lambdaFunctionScheduledEventDetails"]
    assert scheduled["input"] == '{"sku":"b","const":1}'


def test_result_path_leaves_the_original_input_alone() -> None:
    """ResultPath builds a new object; the execution input and earlier outputs keep their values."""
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.order.a", "Next": "B"},
            "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.order.b", "End": True},
        },
    }
    execution = run(definition, INPUT)
    assert {"id", "items", "a", "b"} == set(execution.output["order"])
    assert {"id", "items"} == set(execution.input["order"])
    first_output = json.loads(execution.history[2]["stateExitedEventDetails"]["output"])
    assert {"id", "items", "a"} == set(first_output["order"])


def test_context_object_has_execution_state_and_machine_fields() -> None:
    """$$ exposes Execution, State and StateMachine fields as Step Functions does."""
    state = {"Type": "Pass", "Parameters": {"ctx.$": "$$"}}
    execution = run(single(state, "Ctx"), {"in": 1})
    context = execution.output["ctx"]
    assert {
        "Id": execution.execution_arn,
        "Input": {"in": 1},
        "Name": execution.name,
        "RoleArn": "arn:aws:iam::123456789012:role/StateMachine-role",
        "StartTime": "2026-01-02T03:04:05.678Z",
        "RedriveCount": 0,
    } == context["Execution"]
    assert (context["State"]) == {
        "Name": "Ctx",
        "EnteredTime": "2026-01-02T03:04:05.678Z",
        "RetryCount": 0,
    }
    assert context["StateMachine"] == {
        "Id": "arn:aws:states:us-east-1:123456789012:stateMachine:StateMachine",
        "Name": "StateMachine",
    }
    assert execution.start_date == START


def test_context_can_be_extended_per_execution() -> None:
    """execute(context=...) merges extra fields into the context object."""
    state = {"Type": "Pass", "Parameters": {"role.$": "$$.Execution.RoleArn", "t.$": "$$.Tag"}}
    execution = machine(single(state)).execute(
        {}, context={"Execution": {"RoleArn": "arn:aws:iam::1:role/r"}, "Tag": "x"}
    )
    assert execution.output == {"role": "arn:aws:iam::1:role/r", "t": "x"}


@pytest.mark.parametrize(
    ("state", "cause"),
    [
        (
            {"Type": "Pass", "InputPath": "$.NoSuchInputPath"},
            "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']",
        ),
        (
            {"Type": "Pass", "OutputPath": "$.no.such.path"},
            "Invalid path '$.no.such.path' : Missing property in path $['no']",
        ),
        (
            {"Type": "Pass", "Parameters": {"value.$": "$.no_such_jsonpath"}},
            "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be"
            " found in the input '{\"flag\":true}'",
        ),
        (
            {"Type": "Pass", "Parameters": {"value.$": "$$.Execution.Input.nope"}},
            "The JSONPath '$$.Execution.Input.nope' specified for the field 'value.$' could not"
            " be found in the input '{\"flag\":true}'",
        ),
        (
            {"Type": "Pass", "Result": 1, "ResultPath": "$.flag.x"},
            "Unable to apply ResultPath '$.flag.x': $['flag'] is boolean, not an object",
        ),
        (
            {"Type": "Pass", "Parameters": {"x.$": "States.ArrayLength($.flag)"}},
            "Invalid arguments in States.ArrayLength: expected an array, got boolean",
        ),
    ],
    ids=["InputPath", "OutputPath", "Parameters", "context", "ResultPath", "intrinsic"],
)
def test_processing_failures_end_the_execution(state: dict[str, Any], cause: str) -> None:
    """A path that matches nothing fails the execution, worded as Step Functions words it."""
    execution = run(single(state, "pass"), {"flag": True})
    assert execution.status == "FAILED"
    assert (
        f"An error occurred while executing the state 'pass' (entered at the event id #2). {cause}"
        == execution.cause
    )
    assert types(execution) == ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ({"Type": "Pass", "InputPath": "$.x"}, "States.Runtime"),
        ({"Type": "Pass", "Result": 1, "ResultPath": "$.flag.x"}, "States.ResultPathMatchFailure"),
        (
            {"Type": "Pass", "Parameters": {"x.$": "States.ArrayLength(1)"}},
            "States.IntrinsicFailure",
        ),
    ],
    ids=["path", "result path", "intrinsic"],
)
def test_processing_failures_carry_their_error_name(state: dict[str, Any], error: str) -> None:
    """Each kind of processing failure has its own ASL error name."""
    assert error == run(single(state), {"flag": True}).error


def test_processing_failures_are_not_caught() -> None:
    """States.Runtime is terminal: a Catch (even on States.ALL) does not apply."""
    state = {
        "Type": "Task",
        "Resource": arn("echo"),
        "OutputPath": "$.no.such.result.path",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
        "Next": "Caught",
    }
    definition = {"StartAt": "S", "States": {"S": state, "Caught": {"Type": "Succeed"}}}
    execution = run(definition, {}, {"echo": echo})
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert types(execution)[-2] == "LambdaFunctionSucceeded"
