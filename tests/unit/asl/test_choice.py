"""Choice states: every comparison operator and its Path form, the Is tests, And/Or/Not."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.asl.support import run, types

INPUT: dict[str, Any] = {
    "s": "banana",
    "n": 42,
    "f": 2.5,
    "b": True,
    "t": "2016-03-14T01:59:00Z",
    "t_offset": "2016-03-14T02:59:00.123+01:00",
    "nul": None,
    "log": "log-2024.txt",
    "star": "a*b",
    "astral": "\U0001f600",
    "bmp_high": "\uffff",
    "other": {"s": "banana", "n": 41, "b": False, "t": "2016-03-14T01:59:01Z"},
}


def choose(rule: dict[str, Any], data: Any = None) -> bool:
    """Whether ``rule`` matches ``data`` (INPUT by default) in a real Choice state."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Succeed"},
        },
    }
    execution = run(definition, INPUT if data is None else data)
    assert execution.status == "SUCCEEDED", execution.cause
    return execution.history[-2]["stateExitedEventDetails"]["name"] == "Yes"


CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("StringEquals", {"Variable": "$.s", "StringEquals": "banana"}, True),
    ("StringEquals other", {"Variable": "$.s", "StringEquals": "apple"}, False),
    ("StringEquals on a number", {"Variable": "$.n", "StringEquals": "42"}, False),
    ("StringLessThan", {"Variable": "$.s", "StringLessThan": "cherry"}, True),
    ("StringLessThan equal", {"Variable": "$.s", "StringLessThan": "banana"}, False),
    ("StringGreaterThan", {"Variable": "$.s", "StringGreaterThan": "apple"}, True),
    ("StringLessThanEquals", {"Variable": "$.s", "StringLessThanEquals": "banana"}, True),
    ("StringGreaterThanEquals", {"Variable": "$.s", "StringGreaterThanEquals": "bananas"}, False),
    ("String order by UTF-16", {"Variable": "$.astral", "StringLessThan": "\uffff"}, True),
    ("StringMatches wildcard", {"Variable": "$.log", "StringMatches": "log-*.txt"}, True),
    ("StringMatches no match", {"Variable": "$.log", "StringMatches": "log-*.csv"}, False),
    ("StringMatches escaped star", {"Variable": "$.star", "StringMatches": "a\\*b"}, True),
    ("StringMatches escaped star only", {"Variable": "$.s", "StringMatches": "b\\*"}, False),
    ("StringMatches dot is literal", {"Variable": "$.s", "StringMatches": "b.nana"}, False),
    ("StringMatches on a number", {"Variable": "$.n", "StringMatches": "*"}, False),
    ("NumericEquals", {"Variable": "$.n", "NumericEquals": 42}, True),
    ("NumericEquals float", {"Variable": "$.n", "NumericEquals": 42.0}, True),
    ("NumericEquals on a string", {"Variable": "$.s", "NumericEquals": 42}, False),
    ("NumericEquals on a boolean", {"Variable": "$.b", "NumericEquals": 1}, False),
    ("NumericLessThan", {"Variable": "$.f", "NumericLessThan": 3}, True),
    ("NumericGreaterThan", {"Variable": "$.n", "NumericGreaterThan": 42}, False),
    ("NumericLessThanEquals", {"Variable": "$.n", "NumericLessThanEquals": 42}, True),
    ("NumericGreaterThanEquals", {"Variable": "$.f", "NumericGreaterThanEquals": 2.5}, True),
    ("BooleanEquals", {"Variable": "$.b", "BooleanEquals": True}, True),
    ("BooleanEquals false", {"Variable": "$.b", "BooleanEquals": False}, False),
    ("BooleanEquals on a number", {"Variable": "$.n", "BooleanEquals": True}, False),
    ("TimestampEquals", {"Variable": "$.t", "TimestampEquals": "2016-03-14T01:59:00Z"}, True),
    (
        "TimestampEquals across offsets",
        {"Variable": "$.t_offset", "TimestampEquals": "2016-03-14T01:59:00.123Z"},
        True,
    ),
    ("TimestampLessThan", {"Variable": "$.t", "TimestampLessThan": "2016-03-14T01:59:01Z"}, True),
    (
        "TimestampGreaterThan",
        {"Variable": "$.t", "TimestampGreaterThan": "2016-03-14T01:59:00Z"},
        False,
    ),
    (
        "TimestampLessThanEquals",
        {"Variable": "$.t", "TimestampLessThanEquals": "2016-03-14T01:59:00Z"},
        True,
    ),
    (
        "TimestampGreaterThanEquals",
        {"Variable": "$.t", "TimestampGreaterThanEquals": "2017-01-01T00:00:00Z"},
        False,
    ),
    (
        "Timestamp on a non-timestamp",
        {"Variable": "$.s", "TimestampEquals": "2016-03-14T01:59:00Z"},
        False,
    ),
    ("StringEqualsPath", {"Variable": "$.s", "StringEqualsPath": "$.other.s"}, True),
    ("StringLessThanPath", {"Variable": "$.s", "StringLessThanPath": "$.other.s"}, False),
    ("StringGreaterThanPath", {"Variable": "$.s", "StringGreaterThanPath": "$.log"}, False),
    ("StringLessThanEqualsPath", {"Variable": "$.s", "StringLessThanEqualsPath": "$.s"}, True),
    (
        "StringGreaterThanEqualsPath",
        {"Variable": "$.log", "StringGreaterThanEqualsPath": "$.s"},
        True,
    ),
    ("NumericEqualsPath", {"Variable": "$.n", "NumericEqualsPath": "$.other.n"}, False),
    ("NumericLessThanPath", {"Variable": "$.other.n", "NumericLessThanPath": "$.n"}, True),
    ("NumericGreaterThanPath", {"Variable": "$.n", "NumericGreaterThanPath": "$.other.n"}, True),
    ("NumericLessThanEqualsPath", {"Variable": "$.n", "NumericLessThanEqualsPath": "$.n"}, True),
    (
        "NumericGreaterThanEqualsPath",
        {"Variable": "$.f", "NumericGreaterThanEqualsPath": "$.n"},
        False,
    ),
    ("NumericEqualsPath on a string", {"Variable": "$.n", "NumericEqualsPath": "$.s"}, False),
    ("BooleanEqualsPath", {"Variable": "$.b", "BooleanEqualsPath": "$.other.b"}, False),
    ("TimestampEqualsPath", {"Variable": "$.t", "TimestampEqualsPath": "$.t"}, True),
    ("TimestampLessThanPath", {"Variable": "$.t", "TimestampLessThanPath": "$.other.t"}, True),
    (
        "TimestampGreaterThanPath",
        {"Variable": "$.t", "TimestampGreaterThanPath": "$.other.t"},
        False,
    ),
    (
        "TimestampLessThanEqualsPath",
        {"Variable": "$.other.t", "TimestampLessThanEqualsPath": "$.t"},
        False,
    ),
    (
        "TimestampGreaterThanEqualsPath",
        {"Variable": "$.other.t", "TimestampGreaterThanEqualsPath": "$.t"},
        True,
    ),
    ("IsPresent", {"Variable": "$.s", "IsPresent": True}, True),
    ("IsPresent missing", {"Variable": "$.missing", "IsPresent": True}, False),
    ("IsPresent false on missing", {"Variable": "$.missing", "IsPresent": False}, True),
    ("IsPresent of null", {"Variable": "$.nul", "IsPresent": True}, True),
    ("IsNull", {"Variable": "$.nul", "IsNull": True}, True),
    ("IsNull on a string", {"Variable": "$.s", "IsNull": True}, False),
    ("IsNull false on a string", {"Variable": "$.s", "IsNull": False}, True),
    ("IsNull on missing", {"Variable": "$.missing", "IsNull": True}, False),
    ("IsNumeric", {"Variable": "$.f", "IsNumeric": True}, True),
    ("IsNumeric on a boolean", {"Variable": "$.b", "IsNumeric": True}, False),
    ("IsString", {"Variable": "$.s", "IsString": True}, True),
    ("IsString on a number", {"Variable": "$.n", "IsString": False}, True),
    ("IsBoolean", {"Variable": "$.b", "IsBoolean": True}, True),
    ("IsTimestamp", {"Variable": "$.t", "IsTimestamp": True}, True),
    ("IsTimestamp on a plain string", {"Variable": "$.s", "IsTimestamp": True}, False),
    (
        "And",
        {
            "And": [
                {"Variable": "$.n", "NumericGreaterThanEquals": 20},
                {"Variable": "$.n", "NumericLessThan": 50},
            ]
        },
        True,
    ),
    (
        "And short",
        {
            "And": [
                {"Variable": "$.n", "NumericGreaterThanEquals": 20},
                {"Variable": "$.n", "NumericLessThan": 30},
            ]
        },
        False,
    ),
    (
        "Or",
        {
            "Or": [
                {"Variable": "$.s", "StringEquals": "apple"},
                {"Variable": "$.b", "BooleanEquals": True},
            ]
        },
        True,
    ),
    ("Not", {"Not": {"Variable": "$.s", "StringEquals": "Private"}}, True),
    (
        "guarded by IsPresent",
        {
            "And": [
                {"Variable": "$.missing", "IsPresent": True},
                {"Variable": "$.missing", "StringEquals": "x"},
            ]
        },
        False,
    ),
    ("context variable", {"Variable": "$$.State.Name", "StringEquals": "C"}, True),
]


@pytest.mark.parametrize(("rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_comparison_operators(rule: dict[str, Any], expected: bool) -> None:
    """Each operator matches exactly when Step Functions' rules say it does."""
    assert expected == choose(rule)


@pytest.mark.parametrize(
    ("rule", "missing"),
    [
        ({"Variable": "$.missing", "StringEquals": "x"}, "$.missing"),
        ({"Variable": "$.s", "StringEqualsPath": "$.missing"}, "$.missing"),
        ({"Not": {"Variable": "$.missing.deep", "NumericEquals": 1}}, "$.missing.deep"),
    ],
    ids=["variable", "path operand", "inside Not"],
)
def test_a_missing_variable_fails_with_runtime_error(rule: dict[str, Any], missing: str) -> None:
    """Comparing a value that does not exist fails the execution with States.Runtime."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "End"}], "Default": "End"},
            "End": {"Type": "Succeed"},
        },
    }
    execution = run(definition, INPUT)
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert execution.cause is not None
    assert f"Invalid path '{missing}'" in execution.cause
    assert execution.cause.startswith(
        "An error occurred while executing the state 'C' (entered at the event id #2)."
    )
    assert types(execution) == ["ExecutionStarted", "ChoiceStateEntered", "ExecutionFailed"]


def test_first_matching_rule_wins_and_default_catches_the_rest() -> None:
    """Rules are tried in order; Default applies when none matches."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
                    {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Small"},
                ],
                "Default": "Zero",
            },
            "Big": {"Type": "Pass", "Result": "big", "End": True},
            "Small": {"Type": "Pass", "Result": "small", "End": True},
            "Zero": {"Type": "Pass", "Result": "zero", "End": True},
        },
    }
    assert [run(definition, {"n": n}).output for n in (42, 1, 0)] == ["big", "small", "zero"]


def test_no_match_without_default_fails_with_no_choice_matched() -> None:
    """No matching rule and no Default ends the execution with States.NoChoiceMatched."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "E"}],
            },
            "E": {"Type": "Succeed"},
        },
    }
    execution = run(definition, {"n": 2})
    assert (execution.status, execution.error) == ("FAILED", "States.NoChoiceMatched")
    assert execution.cause is not None
    assert "'C'" in execution.cause


def test_choice_applies_input_and_output_paths() -> None:
    """Rules see the input after InputPath; the state's output is OutputPath of that."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "InputPath": "$.other",
                "OutputPath": "$.s",
                "Choices": [{"Variable": "$.n", "NumericEquals": 41, "Next": "E"}],
            },
            "E": {"Type": "Succeed"},
        },
    }
    assert run(definition, INPUT).output == "banana"
