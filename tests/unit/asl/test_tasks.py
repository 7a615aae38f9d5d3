"""Task states: resource forms, handler resolution, results, failures, isolation, context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strangler.instant.asl import DefinitionError, LambdaContext
from tests.unit.asl.support import (
    arn,
    cause_json,
    details,
    events_of,
    left_to_the_collector,
    machine,
    run,
    single,
    types,
)

INVOKE = "arn:aws:states:::lambda:invoke"


class Boom(Exception):
    """A handler's own error type."""


def double(event: Any, context: LambdaContext) -> Any:
    return event["n"] * 2


def explode(event: Any, context: LambdaContext) -> Any:
    raise Boom("the legacy app said no")


def test_function_arn_form_returns_the_handler_result() -> None:
    """A function-ARN Task's result is the handler's return value, recorded as Lambda events."""
    execution = run(
        single({"Type": "Task", "Resource": arn("double")}), {"n": 21}, {"double": double}
    )
    assert (execution.status, execution.output) == ("SUCCEEDED", 42)
    assert types(execution) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert {
        "resource": arn("double"),
        "input": '{"n":21}',
        "inputDetails": {"truncated": False},
    } == details(execution.history[2])
    assert details(execution.history[4]) == {"output": "42", "outputDetails": {"truncated": False}}


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("double", arn("double")),
        (arn("double"), arn("double")),
        ("double", arn("double") + ":live"),
        (arn("double") + ":live", arn("double") + ":live"),
        (arn("double"), arn("double") + ":7"),
        ("${DoubleArn}", "${DoubleArn}"),
    ],
    ids=["name", "arn", "alias by name", "qualified arn", "version by arn", "placeholder"],
)
def test_resources_resolve_by_exact_string_arn_or_name(key: str, resource: str) -> None:
    """A resource is looked up as written, then as its ARN, then by function name."""
    execution = run(single({"Type": "Task", "Resource": resource}), {"n": 1}, {key: double})
    assert execution.output == 2


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        (arn("missing"), "no handler for"),
        ("${FraudScanFunctionArn}", "placeholder"),
        ("arn:aws:states:::sqs:sendMessage", "no handler for"),
        (INVOKE + ".waitForTaskToken", "not supported"),
    ],
    ids=["unknown function", "placeholder", "unknown service", "callback pattern"],
)
def test_unresolvable_resources_are_rejected_at_construction(resource: str, problem: str) -> None:
    """A Task whose resource has no handler is a DefinitionError naming state and field."""
    state = {"Type": "Task", "Resource": resource, "Parameters": {"FunctionName": "double"}}
    with pytest.raises(DefinitionError) as caught:
        machine(single(state, "Step"), {"double": double})
    assert (caught.value.state, caught.value.field) == ("Step", "Resource")
    assert problem in caught.value.problem


def test_lambda_invoke_wraps_the_result_like_the_integration() -> None:
    """lambda:invoke wraps the result: ExecutedVersion, Payload, Sdk...Metadata, StatusCode."""
    state = {
        "Type": "Task",
        "Resource": INVOKE,
        "Parameters": {"FunctionName": "double", "Payload": {"n.$": "$.n"}},
    }
    execution = run(single(state), {"n": 4}, {"double": double})
    output = execution.output
    assert (list(output)) == [
        "ExecutedVersion",
        "Payload",
        "SdkHttpMetadata",
        "SdkResponseMetadata",
        "StatusCode",
    ]
    assert (
        output["ExecutedVersion"],
        output["Payload"],
        output["StatusCode"],
    ) == ("$LATEST", 8, 200)
    metadata = output["SdkHttpMetadata"]
    assert metadata["HttpStatusCode"] == 200
    assert metadata["HttpHeaders"]["Content-Length"] == "1"
    assert metadata["AllHttpHeaders"]["Content-Type"] == ["application/json"]
    assert output["SdkResponseMetadata"]["RequestId"] == metadata["HttpHeaders"]["x-amzn-RequestId"]
    assert types(execution) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert details(execution.history[2]) == {
        "resourceType": "lambda",
        "resource": "invoke",
        "region": "us-east-1",
        "parameters": '{"FunctionName":"double","Payload":{"n":4}}',
    }
    assert details(execution.history[3]) == {"resourceType": "lambda", "resource": "invoke"}
    assert output == json.loads(details(execution.history[4])["output"])


@pytest.mark.parametrize(
    ("parameters", "version"),
    [
        ({"FunctionName": "double"}, "$LATEST"),
        ({"FunctionName": "double:live"}, "$LATEST"),
        ({"FunctionName": "double", "Qualifier": "3"}, "3"),
        ({"FunctionName": arn("double") + ":5"}, "5"),
        ({"FunctionName": "123456789012:function:double"}, "$LATEST"),
        ({"FunctionName.$": "$.fn"}, "$LATEST"),
    ],
    ids=["name", "alias", "qualifier", "versioned arn", "partial arn", "dynamic"],
)
def test_lambda_invoke_function_names(parameters: dict[str, Any], version: str) -> None:
    """FunctionName may be a name, a qualified name, a (partial) ARN or come from a path."""
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": {**parameters, "Payload": {"n": 1}}}
    execution = run(single(state), {"fn": "double"}, {"double": double})
    assert (2, version) == (execution.output["Payload"], execution.output["ExecutedVersion"])


def test_lambda_invoke_without_payload_sends_an_empty_object() -> None:
    """With no Payload the handler receives an empty object."""
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName": "f"}}
    execution = run(single(state), {"n": 1}, {"f": lambda event, _context: event})
    assert execution.output["Payload"] == {}


def test_lambda_invoke_of_an_unknown_function_at_run_time() -> None:
    """A FunctionName from a path that names no handler fails like Lambda's 404."""
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName.$": "$.fn"}}
    execution = run(single(state), {"fn": "nope"}, {"double": double})
    assert (execution.status, execution.error) == ("FAILED", "Lambda.ResourceNotFoundException")
    assert execution.cause is not None
    assert execution.cause.startswith(
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST"
    )
    assert types(execution)[-2] == "TaskFailed"


@pytest.mark.parametrize(
    ("parameters", "field", "problem"),
    [
        ({"Payload": {}}, "Parameters.FunctionName", "needs FunctionName"),
        ({"FunctionName": "nope"}, "Parameters.FunctionName", "no handler for 'nope'"),
        ({"FunctionName": "double", "Foo": 1}, "Parameters.Foo", "unsupported"),
        (
            {"FunctionName": "double", "InvocationType": "Event"},
            "Parameters.InvocationType",
            "Event",
        ),
    ],
    ids=["no function", "unknown function", "unknown parameter", "async"],
)
def test_lambda_invoke_parameters_are_checked(
    parameters: dict[str, Any], field: str, problem: str
) -> None:
    """Static lambda:invoke parameters are validated before anything runs."""
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": parameters}
    with pytest.raises(DefinitionError) as caught:
        machine(single(state, "Call"), {"double": double})
    assert ("Call", field) == (caught.value.state, caught.value.field)
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("resource", "parameters", "compact"),
    [(arn("explode"), None, False), (INVOKE, {"FunctionName": "explode"}, True)],
    ids=["function arn", "lambda:invoke"],
)
def test_handler_exceptions_become_lambda_style_failures(
    resource: str, parameters: dict[str, Any] | None, compact: bool
) -> None:
    """The error is the exception's class name; the cause is Lambda's JSON error document."""
    state: dict[str, Any] = {"Type": "Task", "Resource": resource}
    if parameters:
        state["Parameters"] = parameters
    execution = run(single(state), {}, {"explode": explode})
    assert (execution.status, execution.error) == ("FAILED", "Boom")
    cause = cause_json(execution)
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert (cause["errorMessage"], cause["errorType"]) == ("the legacy app said no", "Boom")
    trace = "".join(cause["stackTrace"])
    assert "in explode" in trace
    assert "raise Boom" in trace
    assert "strangler/instant/asl" not in trace
    assert compact == ('":"' in (execution.cause or ""))
    failed = "TaskFailed" if parameters else "LambdaFunctionFailed"
    assert [{"error": "Boom", "cause": execution.cause}] == [
        {key: value for key, value in event.items() if key in ("error", "cause")}
        for event in events_of(execution, failed)
    ]


def test_results_that_json_cannot_hold_are_marshal_errors() -> None:
    """A handler returning something JSON cannot encode fails with Runtime.MarshalError."""
    execution = run(
        single({"Type": "Task", "Resource": arn("bad")}),
        {},
        {"bad": lambda _event, _context: {1, 2}},
    )
    assert (execution.status, execution.error) == ("FAILED", "Runtime.MarshalError")
    assert "Unable to marshal response" in cause_json(execution)["errorMessage"]


def test_handlers_get_and_give_copies() -> None:
    """A handler changing its event, or its result afterwards, changes nothing in the machine."""
    kept: list[dict[str, Any]] = []

    def meddle(event: Any, context: LambdaContext) -> Any:
        event["order"]["id"] = "changed"
        result = {"list": [1]}
        kept.append(result)
        return result

    definition = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": arn("meddle"), "ResultPath": "$.r", "Next": "After"},
            "After": {"Type": "Pass", "End": True},
        },
    }
    sm = machine(definition, {"meddle": meddle})
    execution = sm.execute({"order": {"id": "o-1"}})
    kept[0]["list"].append(2)
    assert execution.output == {"order": {"id": "o-1"}, "r": {"list": [1]}}


def test_handlers_receive_a_lambda_context() -> None:
    """The context names the function and carries the request id and remaining time."""
    seen: list[LambdaContext] = []

    def record(event: Any, context: LambdaContext) -> Any:
        seen.append(context)
        raise Boom("x")

    state = {"Type": "Task", "Resource": arn("record") + ":live", "TimeoutSeconds": 5}
    execution = run(single(state), {}, {"record": record})
    context = seen[0]
    assert ("record", arn("record") + ":live") == (
        context.function_name,
        context.invoked_function_arn,
    )
    assert cause_json(execution)["requestId"] == context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 5000
    assert context.log_group_name == "/aws/lambda/record"


def test_other_service_integrations_use_the_mapped_handler() -> None:
    """A service resource given verbatim in resources runs its handler with Task events."""
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"Message.$": "$.m"},
    }
    execution = run(
        single(state),
        {"m": "hi"},
        {"arn:aws:states:::sns:publish": lambda event, _context: {"Id": event}},
    )
    assert execution.output == {"Id": {"Message": "hi"}}
    assert details(execution.history[2]) == {
        "resourceType": "sns",
        "resource": "publish",
        "region": "us-east-1",
        "parameters": '{"Message":"hi"}',
    }


def test_timeout_seconds_is_recorded_in_the_scheduled_event() -> None:
    """TimeoutSeconds shows as timeoutInSeconds, as in Step Functions' history."""
    state = {"Type": "Task", "Resource": arn("double"), "TimeoutSeconds": 30}
    execution = run(single(state), {"n": 1}, {"double": double})
    assert details(execution.history[2])["timeoutInSeconds"] == 30


def explode_kept(event: Any, context: LambdaContext) -> Any:
    # The exception is kept in a local and raised after, as the legacy adapter's retry
    # loop does: its traceback holds this frame, which holds it.
    failure = Boom("the legacy app said no")
    try:
        int("not a number")
    except ValueError as exc:
        failure.__cause__ = exc
    raise failure


def test_a_failed_attempt_leaves_no_traceback_to_the_garbage_collector() -> None:
    """A handler's exception (and the one it was raised from) is freed by reference
    counting once its cause is written: a Task retried and then caught, as the shipped
    pipeline's AuthorizePayment is, leaves no traceback, frame or exception in a
    reference cycle for the collector's full collections to find."""
    state = {
        "Type": "Task",
        "Resource": arn("f"),
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
        "Next": "Caught",
    }
    definition = {"StartAt": "S", "States": {"S": state, "Caught": {"Type": "Pass", "End": True}}}
    execution, found = left_to_the_collector(lambda: run(definition, {}, {"f": explode_kept}))
    assert execution.status == "SUCCEEDED"
    failures = events_of(execution, "LambdaFunctionFailed")
    assert [failure["error"] for failure in failures] == ["Boom"] * 3
    assert "in explode_kept" in "".join(json.loads(failures[-1]["cause"])["stackTrace"])
    left = {"Boom", "ValueError", "frame", "traceback"} & set(found)
    assert left == set()
