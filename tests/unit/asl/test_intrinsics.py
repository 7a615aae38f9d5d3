"""Intrinsic functions: every function, argument parsing and escapes, and failures."""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

import pytest

from strangler.instant.asl.errors import EvaluationError
from strangler.instant.asl.intrinsics import IntrinsicSyntaxError, compile_intrinsic

DATA: dict[str, Any] = {
    "name": "Arnav",
    "template": "Hello, my name is {}.",
    "escaped": '{"foo": "bar"}',
    "json": {"foo": "bar"},
    "list": [1, 2, 2, "a", {"k": 1}, {"k": 1}],
    "id": 123456,
    "csv": "This.is+a,test=string",
    "splitter": ".+,=",
    "left": {"a": 1, "b": {"x": 1}},
    "right": {"b": {"y": 2}, "c": 3},
}


class Scope:
    """A scope with a context object and a seeded random source."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)

    def context(self) -> Any:
        return {"Execution": {"Name": "exec-1"}}


def evaluate(text: str, data: Any = None, scope: Scope | None = None) -> Any:
    return compile_intrinsic(text).evaluate(DATA if data is None else data, scope or Scope())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.Format('Hello, my name is {}.', $.name)", "Hello, my name is Arnav."),
        ("States.Format($.template, $.name)", "Hello, my name is Arnav."),
        ("States.Format('{} and {}', 1, true)", "1 and true"),
        ("States.Format('{}', null)", "null"),
        ("States.Format('{}', $.json)", "{foo=bar}"),
        ("States.Format('{}', States.Array(1, 'x'))", "[1, x]"),
        ("States.Format('literal \\{\\} and {}', 'value')", "literal {} and value"),
        ("States.Format('it\\'s {}', $$.Execution.Name)", "it's exec-1"),
        ("States.Format('back\\\\slash')", "back\\slash"),
        ("States.StringToJson($.escaped)", {"foo": "bar"}),
        ("States.JsonToString($.json)", '{"foo":"bar"}'),
        ("States.Array('Foo', 2022, $.json, null)", ["Foo", 2022, {"foo": "bar"}, None]),
        ("States.Array()", []),
        ("States.Array($.id)", [123456]),
        ("States.ArrayPartition(States.Array(1, 2, 3, 4, 5), 2)", [[1, 2], [3, 4], [5]]),
        ("States.ArrayContains($.list, 'a')", True),
        ("States.ArrayContains($.list, 9)", False),
        ("States.ArrayContains($.list, $.list[4])", True),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayRange(0, 3, 5)", [0]),
        ("States.ArrayGetItem($.list, 3)", "a"),
        ("States.ArrayLength($.list)", 6),
        ("States.ArrayUnique($.list)", [1, 2, "a", {"k": 1}]),
        ("States.ArrayUnique(States.Array(1, true, 1.5, 1))", [1, True, 1.5]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash('input data', 'MD5')", hashlib.md5(b"input data").hexdigest()),  # noqa: S324
        ("States.Hash('input data', 'SHA-1')", hashlib.sha1(b"input data").hexdigest()),  # noqa: S324
        ("States.Hash('input data', 'SHA-256')", hashlib.sha256(b"input data").hexdigest()),
        ("States.Hash('input data', 'SHA-384')", hashlib.sha384(b"input data").hexdigest()),
        ("States.Hash('input data', 'SHA-512')", hashlib.sha512(b"input data").hexdigest()),
        ("States.JsonMerge($.left, $.right, false)", {"a": 1, "b": {"y": 2}, "c": 3}),
        ("States.MathAdd(111, -1)", 110),
        ("States.MathAdd(1.5, 2.4)", 4),
        ("States.MathAdd($.id, 1)", 123457),
        ("States.StringSplit($.csv, $.splitter)", ["This", "is", "a", "test", "string"]),
        ("States.StringSplit('1,2,,3', ',')", ["1", "2", "3"]),
        ("States.ArrayGetItem(States.StringSplit('a/b.c/d', '/'), 1)", "b.c"),
        ("States.Array(-1.5e2, 0)", [-150.0, 0]),
        ("  States.Array( 1 ,  2 )", None),
    ],
    ids=lambda value: value[:60] if isinstance(value, str) else None,
)
def test_functions_compute_what_aws_documents(text: str, expected: Any) -> None:
    """Each function returns the value the Step Functions documentation gives."""
    if expected is None:
        with pytest.raises(IntrinsicSyntaxError):
            compile_intrinsic(text)
        return
    assert expected == evaluate(text)


def test_math_random_is_in_range_and_seedable() -> None:
    """MathRandom stays within its bounds; a seed argument makes it repeatable."""
    values = {evaluate("States.MathRandom(1, 3)") for _ in range(50)}
    assert values <= {1, 2, 3}
    seeded = evaluate("States.MathRandom(1, 999, 42)")
    assert seeded == evaluate("States.MathRandom(1, 999, 42)")


def test_uuid_is_version_4_and_follows_the_injected_rng() -> None:
    """UUID returns a v4 UUID drawn from the execution's random source."""
    first = evaluate("States.UUID()", scope=Scope(5))
    assert uuid.UUID(first).version == 4
    assert first == evaluate("States.UUID()", scope=Scope(5))
    assert first != evaluate("States.UUID()", scope=Scope(6))


def test_nesting_up_to_ten_is_allowed() -> None:
    """Invocations nest up to ten deep, as in Step Functions; deeper is rejected."""
    nested = "States.Array(" * 10 + "1" + ")" * 10
    assert evaluate(nested) == [[[[[[[[[[1]]]]]]]]]]
    with pytest.raises(IntrinsicSyntaxError, match="nest at most 10"):
        compile_intrinsic("States.Array(" * 11 + "1" + ")" * 11)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("States.Nope(1)", "unknown function"),
        ("States.Format", "expected '('"),
        ("States.Array(1", "expected ',' or ')'"),
        ("States.Array('open)", "unclosed string"),
        ("States.Array('bad \\n escape')", "open escape"),
        ("States.ArrayLength()", "takes 1 arguments, got 0"),
        ("States.Format('{} {}', 1)", "2 '{}' placeholders but 1 values"),
        ("States.Format(1)", "needs a string"),
        ("States.Array(1) trailing", "unexpected text"),
        ("States.Array($.a[)", "invalid path"),
        ("States.Array(nope)", "expected an argument"),
    ],
    ids=lambda value: value[:40],
)
def test_malformed_invocations_are_rejected(text: str, problem: str) -> None:
    """Syntax errors and wrong argument counts are caught at compile time."""
    with pytest.raises(IntrinsicSyntaxError, match="invalid intrinsic") as caught:
        compile_intrinsic(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("States.StringToJson('{not json')", "not JSON"),
        ("States.StringToJson($.id)", "expected a string, got number"),
        ("States.ArrayGetItem($.list, 6)", "index 6 is out of bounds"),
        ("States.ArrayGetItem($.list, 1.5)", "must be an integer"),
        ("States.ArrayLength($.json)", "expected an array, got object"),
        ("States.ArrayPartition($.list, 0)", "chunk size must be positive"),
        ("States.ArrayRange(1, 2, 0)", "step must not be 0"),
        ("States.ArrayRange(0, 2000, 1)", "at most 1000"),
        ("States.Base64Decode('***')", "not base64"),
        ("States.Hash('x', 'SHA-3')", "unknown algorithm"),
        ("States.Hash(null, 'MD5')", "must not be null"),
        ("States.JsonMerge($.left, $.right, true)", "only a shallow merge"),
        ("States.JsonMerge($.left, $.list, false)", "must be objects"),
        ("States.MathAdd('1', 2)", "expected numbers"),
        ("States.MathAdd(3000000000, 1)", "32-bit"),
        ("States.MathRandom(5, 1)", "greater than end"),
        ("States.Format($.id, 1)", "template must be a string"),
        ("States.Format($.template)", "1 placeholders but 0 values"),
        ("States.StringSplit($.id, ',')", "expected two strings"),
    ],
    ids=lambda value: value[:40],
)
def test_bad_arguments_fail_with_intrinsic_failure(text: str, problem: str) -> None:
    """Wrong argument values at run time raise States.IntrinsicFailure naming the function."""
    with pytest.raises(EvaluationError) as caught:
        evaluate(text)
    assert caught.value.error == "States.IntrinsicFailure"
    assert text.split("(", maxsplit=1)[0] in caught.value.detail
    assert problem in caught.value.detail


def test_a_missing_path_argument_is_a_runtime_failure() -> None:
    """A path argument that matches nothing fails with States.Runtime, not IntrinsicFailure."""
    with pytest.raises(EvaluationError) as caught:
        evaluate("States.Array($.missing)")
    assert caught.value.error == "States.Runtime"


def test_long_text_is_refused() -> None:
    """Base64 and Hash refuse inputs over 10,000 characters, as Step Functions does."""
    with pytest.raises(EvaluationError, match="at most 10000"):
        evaluate("States.Base64Encode($.big)", {"big": "x" * 10_001})
