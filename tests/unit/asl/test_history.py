"""History events: valid against Step Functions' own API model, linked as AWS links them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import botocore.session
import pytest

from strangler.instant.asl import Execution, LambdaContext
from tests.unit.asl.support import arn, run

HISTORY_EVENT = (
    botocore.session.get_session().get_service_model("stepfunctions").shape_for("HistoryEvent")
)
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "long": int,
    "integer": int,
    "boolean": bool,
    "timestamp": datetime,
}


def check_shape(value: Any, shape: Any, where: str) -> None:
    """Assert ``value`` fits a botocore shape: known members, required ones, right types."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), where
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{where}: members {unknown} are not in the API model"
        missing = set(shape.required_members) - set(value)
        assert not missing, f"{where}: required members {missing} are missing"
        for name, member in value.items():
            check_shape(member, shape.members[name], f"{where}.{name}")
        return
    expected = _PYTHON_TYPES[shape.type_name]
    assert isinstance(value, expected), f"{where}: {value!r} is not a {shape.type_name}"
    if shape.type_name in ("long", "integer"):
        assert not isinstance(value, bool), where
    if shape.type_name == "string" and shape.enum:
        assert value in shape.enum, f"{where}: {value!r} is not one of the API's values"


def check_history(execution: Execution) -> None:
    ids = [event["id"] for event in execution.history]
    assert list(range(1, len(ids) + 1)) == ids
    for event in execution.history:
        check_shape(event, HISTORY_EVENT, f"event {event['id']} ({event['type']})")
        assert event["timestamp"].tzinfo is not None
        assert 0 <= event["previousEventId"] < event["id"]
        for key, details in event.items():
            for field in ("input", "output", "parameters"):
                if key.endswith("EventDetails") and field in details:
                    json.loads(details[field])  # inputs and outputs are JSON text


def everything(event: Any, context: LambdaContext) -> Any:
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"seen": event}


RICH = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"fail": False}, "Next": "Call"},
        "Call": {"Type": "Task", "Resource": arn("f"), "TimeoutSeconds": 5, "Next": "Invoke"},
        "Invoke": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f", "Payload": {"fail": True}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Fan"}],
            "Next": "Fan",
        },
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": True}}},
                {
                    "StartAt": "Each",
                    "States": {
                        "Each": {
                            "Type": "Map",
                            "ItemsPath": "$$.Execution.Input.items",
                            "ItemProcessor": {
                                "StartAt": "Item",
                                "States": {"Item": {"Type": "Pass", "End": True}},
                            },
                            "End": True,
                        }
                    },
                },
            ],
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$[1][0]", "NumericEquals": 1, "Next": "Done"}],
            "Default": "Broken",
        },
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "route"},
    },
}


def test_every_event_fits_the_get_execution_history_model() -> None:
    """Events of every state type validate against botocore's GetExecutionHistory model."""
    execution = run(RICH, {"items": [1, 2]}, {"f": everything})
    assert execution.status == "SUCCEEDED", execution.cause
    check_history(execution)
    kinds = {event["type"] for event in execution.history}
    assert {
        "PassStateEntered",
        "LambdaFunctionScheduled",
        "TaskScheduled",
        "TaskFailed",
        "ParallelStateSucceeded",
        "WaitStateExited",
        "MapIterationSucceeded",
        "ChoiceStateExited",
        "SucceedStateExited",
    } <= kinds


@pytest.mark.parametrize(
    ("definition", "data"),
    [
        ({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}, {}),
        ({**RICH, "TimeoutSeconds": 1}, {"items": []}),
        (RICH, {"items": [5]}),
    ],
    ids=["fail state", "timed out", "fail after choice"],
)
def test_failed_and_timed_out_histories_fit_the_model(
    definition: dict[str, Any], data: dict[str, Any]
) -> None:
    """ExecutionFailed and ExecutionTimedOut events validate too."""
    execution = run(definition, data, {"f": everything})
    assert execution.status in ("FAILED", "TIMED_OUT")
    check_history(execution)


def test_caught_lambda_failure_is_linked_like_step_functions() -> None:
    """A caught Lambda failure has the same events and previousEventId links as AWS records."""

    def fail(event: Any, context: LambdaContext) -> Any:
        raise RuntimeError("Some exception was raised.")

    definition = {
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": arn("fail"),
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Handler"}],
                "End": True,
            },
            "Handler": {"Type": "Pass", "End": True},
        },
    }
    execution = run(definition, {}, {"fail": fail})
    assert [(e["id"], e["previousEventId"], e["type"]) for e in execution.history] == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "TaskStateEntered"),
        (3, 2, "LambdaFunctionScheduled"),
        (4, 3, "LambdaFunctionStarted"),
        (5, 4, "LambdaFunctionFailed"),
        (6, 5, "TaskStateExited"),
        (7, 6, "PassStateEntered"),
        (8, 7, "PassStateExited"),
        (9, 8, "ExecutionSucceeded"),
    ]
    exited = json.loads(execution.history[5]["stateExitedEventDetails"]["output"])
    assert exited["Error"] == "RuntimeError"
    assert json.loads(exited["Cause"])["errorMessage"] == "Some exception was raised."


def test_retried_attempts_follow_each_other() -> None:
    """Each retried attempt repeats Scheduled/Started/Failed, linked one after the other."""

    def fail(event: Any, context: LambdaContext) -> Any:
        raise RuntimeError("down")

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": arn("fail"),
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "End": True,
            }
        },
    }
    execution = run(definition, {}, {"fail": fail})
    scheduled = [
        (e["id"], e["previousEventId"])
        for e in execution.history
        if e["type"] == "LambdaFunctionScheduled"
    ]
    assert scheduled == [(3, 2), (6, 5), (9, 8)]
    request_ids = {
        json.loads(e["lambdaFunctionFailedEventDetails"]["cause"])["requestId"]
        for e in execution.history
        if e["type"] == "LambdaFunctionFailed"
    }
    assert len(request_ids) == 3
