"""Definitions are validated before anything runs; errors name the state and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strangler.exceptions import StranglerError
from strangler.instant.asl import DefinitionError
from strangler.instant.asl.definition import parse_definition
from strangler.instant.exceptions import InstantError
from tests.unit.asl.support import arn, machine


def with_state(state: dict[str, Any], name: str = "S", **others: Any) -> dict[str, Any]:
    return {"StartAt": name, "States": {name: state, **others}}


PASS_END = {"Type": "Pass", "End": True}
TASK = {"Type": "Task", "Resource": arn("f"), "End": True}

INVALID: list[tuple[str, Any, str | None, str | None, str]] = [
    ("not an object", [], None, None, "a definition is a JSON object"),
    ("not JSON", "{nope", None, None, "not valid JSON"),
    (
        "not JSON values",
        {"StartAt": "S", "States": {"S": {**PASS_END, "Result": {1, 2}}}},
        None,
        None,
        "JSON values",
    ),
    ("no StartAt", {"States": {"S": PASS_END}}, None, "StartAt", "StartAt must name"),
    ("StartAt unknown", {"StartAt": "X", "States": {"S": PASS_END}}, None, "StartAt", "'X'"),
    ("no States", {"StartAt": "S"}, None, "States", "non-empty object"),
    ("unknown top field", {**with_state(PASS_END), "Foo": 1}, None, "Foo", "unknown"),
    ("bad version", {**with_state(PASS_END), "Version": "2.0"}, None, "Version", "1.0"),
    (
        "bad timeout",
        {**with_state(PASS_END), "TimeoutSeconds": 0},
        None,
        "TimeoutSeconds",
        "integer",
    ),
    (
        "JSONata",
        {**with_state(PASS_END), "QueryLanguage": "JSONata"},
        None,
        "QueryLanguage",
        "JSONPath",
    ),
    ("long name", with_state(PASS_END, "x" * 81), None, "States", "1 to 80"),
    ("unknown type", with_state({"Type": "Sleep", "End": True}), "S", "Type", "Type must be"),
    ("unknown field", with_state({**PASS_END, "Foo": 1}), "S", "Foo", "unknown"),
    ("no Next or End", with_state({"Type": "Pass"}), "S", "End", "exactly one"),
    ("Next and End", with_state({**PASS_END, "Next": "S"}), "S", "Next", "exactly one"),
    ("End false", with_state({"Type": "Pass", "End": False}), "S", "End", "End must be true"),
    ("Next unknown", with_state({"Type": "Pass", "Next": "Nope"}), "S", "Next", "'Nope'"),
    ("End on Succeed", with_state({"Type": "Succeed", "End": True}), "S", "End", "unknown"),
    ("bad InputPath", with_state({**PASS_END, "InputPath": "foo"}), "S", "InputPath", "'$'"),
    ("bad OutputPath", with_state({**PASS_END, "OutputPath": "$.a["}), "S", "OutputPath", "path"),
    (
        "ResultPath into context",
        with_state({**PASS_END, "ResultPath": "$$.x"}),
        "S",
        "ResultPath",
        "context object",
    ),
    (
        "ResultPath wildcard",
        with_state({**PASS_END, "ResultPath": "$.a[*]"}),
        "S",
        "ResultPath",
        "object fields",
    ),
    (
        "Parameters .$ not a path",
        with_state({**PASS_END, "Parameters": {"a.$": "hello"}}),
        "S",
        "Parameters.a.$",
        "neither a path",
    ),
    (
        "Parameters .$ not a string",
        with_state({**PASS_END, "Parameters": {"a.$": 1}}),
        "S",
        "Parameters.a.$",
        "needs a path",
    ),
    (
        "Parameters duplicate",
        with_state({**PASS_END, "Parameters": {"a": 1, "a.$": "$"}}),
        "S",
        "Parameters.a.$",
        "given twice",
    ),
    (
        "Parameters bad intrinsic",
        with_state({**PASS_END, "Parameters": {"n": {"a.$": "States.Nope()"}}}),
        "S",
        "Parameters.n.a.$",
        "unknown function",
    ),
    ("no Resource", with_state({"Type": "Task", "End": True}), "S", "Resource", "ARN"),
    (
        "both timeouts",
        with_state({**TASK, "TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t"}),
        "S",
        "TimeoutSecondsPath",
        "not both",
    ),
    ("zero timeout", with_state({**TASK, "TimeoutSeconds": 0}), "S", "TimeoutSeconds", "integer"),
    (
        "heartbeat too long",
        with_state({**TASK, "TimeoutSeconds": 5, "HeartbeatSeconds": 5}),
        "S",
        "HeartbeatSeconds",
        "smaller",
    ),
    (
        "ResultSelector not object",
        with_state({**TASK, "ResultSelector": [1]}),
        "S",
        "ResultSelector",
        "must be an object",
    ),
    ("Retry not array", with_state({**TASK, "Retry": {}}), "S", "Retry", "array"),
    (
        "empty ErrorEquals",
        with_state({**TASK, "Retry": [{"ErrorEquals": []}]}),
        "S",
        "Retry[0].ErrorEquals",
        "non-empty",
    ),
    (
        "unknown States error",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["States.Nope"]}]}),
        "S",
        "Retry[0].ErrorEquals",
        "reserved",
    ),
    (
        "States.ALL not alone",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["States.ALL", "E"]}]}),
        "S",
        "Retry[0].ErrorEquals",
        "alone",
    ),
    (
        "States.ALL not last",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}]}),
        "S",
        "Retry[0].ErrorEquals",
        "last",
    ),
    (
        "negative MaxAttempts",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}]}),
        "S",
        "Retry[0].MaxAttempts",
        "integer",
    ),
    (
        "BackoffRate below 1",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}]}),
        "S",
        "Retry[0].BackoffRate",
        ">= 1.0",
    ),
    (
        "bad jitter",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["E"], "JitterStrategy": "HALF"}]}),
        "S",
        "Retry[0].JitterStrategy",
        "FULL or NONE",
    ),
    (
        "unknown retrier field",
        with_state({**TASK, "Retry": [{"ErrorEquals": ["E"], "Interval": 1}]}),
        "S",
        "Retry[0].Interval",
        "unknown",
    ),
    (
        "Catch without Next",
        with_state({**TASK, "Catch": [{"ErrorEquals": ["E"]}]}),
        "S",
        "Catch[0].Next",
        "Next must name",
    ),
    (
        "Catch to unknown state",
        with_state({**TASK, "Catch": [{"ErrorEquals": ["E"], "Next": "Nope"}]}),
        "S",
        "Catch[0].Next",
        "'Nope'",
    ),
    (
        "Catch States.ALL not last",
        with_state(
            {
                **TASK,
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "Next": "S"},
                    {"ErrorEquals": ["E"], "Next": "S"},
                ],
            }
        ),
        "S",
        "Catch[0].ErrorEquals",
        "last",
    ),
    (
        "Catch bad ResultPath",
        with_state({**TASK, "Catch": [{"ErrorEquals": ["E"], "Next": "S", "ResultPath": "x"}]}),
        "S",
        "Catch[0].ResultPath",
        "'$'",
    ),
    ("no Choices", with_state({"Type": "Choice", "Choices": []}), "S", "Choices", "non-empty"),
    (
        "Choice rule without Next",
        with_state({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True}]}),
        "S",
        "Choices[0].Next",
        "needs 'Next'",
    ),
    (
        "Choice Next unknown",
        with_state(
            {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "X"}]}
        ),
        "S",
        "Choices[0].Next",
        "'X'",
    ),
    (
        "Choice Default unknown",
        with_state(
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "S"}],
                "Default": "X",
            }
        ),
        "S",
        "Default",
        "'X'",
    ),
    (
        "nested Next",
        with_state(
            {
                "Type": "Choice",
                "Choices": [{"Not": {"Variable": "$.a", "IsNull": True, "Next": "S"}, "Next": "S"}],
            }
        ),
        "S",
        "Choices[0].Not.Next",
        "only top-level",
    ),
    (
        "two operators",
        with_state(
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "StringEquals": "x", "IsNull": True, "Next": "S"}],
            }
        ),
        "S",
        "Choices[0]",
        "exactly one operator",
    ),
    (
        "no operator",
        with_state({"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "S"}]}),
        "S",
        "Choices[0]",
        "exactly one operator",
    ),
    (
        "no Variable",
        with_state({"Type": "Choice", "Choices": [{"StringEquals": "x", "Next": "S"}]}),
        "S",
        "Choices[0].Variable",
        "path string",
    ),
    (
        "wrong literal type",
        with_state(
            {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "S"}]}
        ),
        "S",
        "Choices[0].NumericEquals",
        "a number",
    ),
    (
        "bad timestamp literal",
        with_state(
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.a", "TimestampEquals": "2016-03-14", "Next": "S"}],
            }
        ),
        "S",
        "Choices[0].TimestampEquals",
        "RFC 3339",
    ),
    (
        "empty And",
        with_state({"Type": "Choice", "Choices": [{"And": [], "Next": "S"}]}),
        "S",
        "Choices[0].And",
        "non-empty",
    ),
    (
        "And with Variable",
        with_state(
            {
                "Type": "Choice",
                "Choices": [
                    {"And": [{"Variable": "$.a", "IsNull": True}], "Variable": "$.a", "Next": "S"}
                ],
            }
        ),
        "S",
        "Choices[0]",
        "may not also have",
    ),
    (
        "Is with non-boolean",
        with_state({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": 1, "Next": "S"}]}),
        "S",
        "Choices[0].IsNull",
        "true or false",
    ),
    ("Wait with nothing", with_state({"Type": "Wait", "End": True}), "S", "Seconds", "exactly one"),
    (
        "Wait with two",
        with_state({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}),
        "S",
        "SecondsPath",
        "exactly one",
    ),
    (
        "Wait bad timestamp",
        with_state({"Type": "Wait", "Timestamp": "2016-12-05T25:29:29Z", "End": True}),
        "S",
        "Timestamp",
        "RFC 3339",
    ),
    (
        "Wait SecondsPath not definite",
        with_state({"Type": "Wait", "SecondsPath": "$.a[*]", "End": True}),
        "S",
        "SecondsPath",
        "reference path",
    ),
    (
        "Fail both",
        with_state({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}),
        "S",
        "ErrorPath",
        "not both",
    ),
    ("Fail Error not string", with_state({"Type": "Fail", "Error": 1}), "S", "Error", "string"),
    (
        "Parallel without branches",
        with_state({"Type": "Parallel", "Branches": [], "End": True}),
        "S",
        "Branches",
        "non-empty",
    ),
    (
        "Parallel branch leaves",
        with_state(
            {
                "Type": "Parallel",
                "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "S"}}}],
                "End": True,
            }
        ),
        "B",
        "Next",
        "inside it",
    ),
    (
        "duplicate name in branch",
        with_state(
            {
                "Type": "Parallel",
                "Branches": [{"StartAt": "S", "States": {"S": PASS_END}}],
                "End": True,
            }
        ),
        "S",
        None,
        "unique",
    ),
    (
        "Map without processor",
        with_state({"Type": "Map", "End": True}),
        "S",
        "ItemProcessor",
        "exactly one",
    ),
    (
        "Map distributed",
        with_state(
            {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "I",
                    "States": {"I": PASS_END},
                },
                "End": True,
            }
        ),
        "S",
        "ItemProcessor.ProcessorConfig.Mode",
        "INLINE",
    ),
    (
        "Map tolerated failures",
        with_state(
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                "ToleratedFailureCount": 1,
                "End": True,
            }
        ),
        "S",
        "ToleratedFailureCount",
        "not supported",
    ),
    (
        "Map both selectors",
        with_state(
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                "ItemSelector": {},
                "Parameters": {},
                "End": True,
            }
        ),
        "S",
        "Parameters",
        "not both",
    ),
    (
        "Map negative concurrency",
        with_state(
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                "MaxConcurrency": -1,
                "End": True,
            }
        ),
        "S",
        "MaxConcurrency",
        ">= 0",
    ),
    (
        "no terminal state",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}},
        None,
        "States",
        "no state ends",
    ),
]


@pytest.mark.parametrize(
    ("definition", "state", "field", "problem"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_definitions_are_rejected(
    definition: Any, state: str | None, field: str | None, problem: str
) -> None:
    """Each mistake raises DefinitionError naming the state and field, before any run."""
    with pytest.raises(DefinitionError) as caught:
        machine(definition, {"f": lambda _event, _context: None})
    assert (state, field) == (caught.value.state, caught.value.field)
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"state {state!r}" if state else "definition")


def test_definition_errors_are_value_errors_and_instant_errors() -> None:
    """DefinitionError fits both the strangler error tree and ValueError."""
    with pytest.raises(DefinitionError) as caught:
        parse_definition({})
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InstantError)
    assert isinstance(caught.value, StranglerError)


def test_unreachable_states_are_warnings() -> None:
    """States no transition reaches are allowed but listed in warnings."""
    definition = with_state(PASS_END, "A", Orphan=PASS_END)
    assert machine(definition).warnings == ("state 'Orphan' cannot be reached from 'A'",)


def test_json_text_and_comments_are_accepted() -> None:
    """A definition may be JSON text and carry Comment fields anywhere allowed."""
    definition = {
        "Comment": "top",
        "Version": "1.0",
        "TimeoutSeconds": 60,
        "StartAt": "S",
        "States": {
            "S": {
                "Type": "Choice",
                "Comment": "c",
                "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "E", "Comment": "r"}],
                "Default": "E",
            },
            "E": {"Type": "Succeed", "Comment": "e"},
        },
    }
    sm = machine(json.dumps(definition))
    assert definition == sm.definition
    assert sm.execute({"a": 1}).status == "SUCCEEDED"
