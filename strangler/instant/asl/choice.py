"""Choice rules compiled into predicates over a state's (effective) input.

Every comparison operator of the language is supported, each with its ``...Path`` form
(the value compared against comes from the input), plus ``StringMatches``, the ``Is...``
tests and ``And``/``Or``/``Not``. As in Step Functions, a comparison whose values are not
both of the operator's type is false, and a ``Variable`` (or ``...Path`` operand) that
does not exist fails the execution with States.Runtime, unless the operator is an
``Is...`` test (``IsPresent`` is false; the others are false too).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strangler.instant.asl.errors import RUNTIME, EvaluationError, PathNotFound
from strangler.instant.asl.paths import JsonPath, PathSyntaxError, Scope, compile_path
from strangler.instant.asl.timestamps import parse_timestamp
from strangler.instant.exceptions import DefinitionError

__all__ = ["OPERATORS", "ChoiceRule", "compile_choice_rule"]

Predicate = Callable[[Any, Scope], bool]
_Compare = Callable[[Any, Any], bool]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _java_string_key(value: str) -> str | bytes:
    """Strings order by UTF-16 code units in Java; only astral characters differ."""
    if value.isascii() or max(value) < "\U00010000":
        return value
    return value.encode("utf-16-be")


def _string_compare(op: Callable[[Any, Any], bool]) -> _Compare:
    def compare(a: Any, b: Any) -> bool:
        if not (isinstance(a, str) and isinstance(b, str)):
            return False
        key_a, key_b = _java_string_key(a), _java_string_key(b)
        if type(key_a) is not type(key_b):
            key_a, key_b = a.encode("utf-16-be"), b.encode("utf-16-be")
        return op(key_a, key_b)

    return compare


def _numeric_compare(op: Callable[[Any, Any], bool]) -> _Compare:
    return lambda a, b: _is_number(a) and _is_number(b) and op(a, b)


def _timestamp_compare(op: Callable[[Any, Any], bool]) -> _Compare:
    def compare(a: Any, b: Any) -> bool:
        left, right = parse_timestamp(a), parse_timestamp(b)
        return left is not None and right is not None and op(left, right)

    return compare


def _boolean_equals(a: Any, b: Any) -> bool:
    return isinstance(a, bool) and isinstance(b, bool) and a == b


def _valid_string(value: Any) -> bool:
    return isinstance(value, str)


def _valid_timestamp(value: Any) -> bool:
    return parse_timestamp(value) is not None


# operator name -> (comparison, literal check, what the literal must be)
OPERATORS: dict[str, tuple[_Compare, Callable[[Any], bool], str]] = {}
for _suffix, _op in _ORDER.items():
    OPERATORS[f"String{_suffix}"] = (_string_compare(_op), _valid_string, "a string")
    OPERATORS[f"Numeric{_suffix}"] = (_numeric_compare(_op), _is_number, "a number")
    OPERATORS[f"Timestamp{_suffix}"] = (
        _timestamp_compare(_op),
        _valid_timestamp,
        "an RFC 3339 timestamp such as 2016-03-14T01:59:00Z",
    )
OPERATORS["BooleanEquals"] = (_boolean_equals, lambda v: isinstance(v, bool), "true or false")

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsNumeric": _is_number,
    "IsString": lambda value: isinstance(value, str),
    "IsBoolean": lambda value: isinstance(value, bool),
    "IsTimestamp": _valid_timestamp,
}
_COMPARISON_KEYS = frozenset(
    [*OPERATORS, *(f"{name}Path" for name in OPERATORS), *_TYPE_TESTS, "IsPresent", "StringMatches"]
)
_BOOLEAN_KEYS = ("And", "Or", "Not")


@dataclass(frozen=True, slots=True)
class ChoiceRule:
    """A top-level rule: when ``matches`` the input, the machine goes to ``next``."""

    next: str
    matches: Predicate


def compile_choice_rule(rule: Any, *, state: str, field: str) -> ChoiceRule:
    """Compile one element of ``Choices``; raises DefinitionError naming the bad field."""
    if not isinstance(rule, Mapping):
        raise DefinitionError("a Choice rule must be an object", state=state, field=field)
    next_state = rule.get("Next")
    if not isinstance(next_state, str):
        raise DefinitionError(
            "a top-level Choice rule needs 'Next' naming the state to go to",
            state=state,
            field=f"{field}.Next",
        )
    return ChoiceRule(next_state, _compile(rule, state, field, top_level=True))


def _compile(rule: Any, state: str, field: str, *, top_level: bool) -> Predicate:
    if not isinstance(rule, Mapping):
        raise DefinitionError("a Choice rule must be an object", state=state, field=field)
    if not top_level and "Next" in rule:
        raise DefinitionError(
            "only top-level Choice rules may have 'Next'", state=state, field=f"{field}.Next"
        )
    allowed = {"Comment", "Next"} if top_level else {"Comment"}
    boolean = [key for key in _BOOLEAN_KEYS if key in rule]
    if boolean:
        extra = sorted(set(rule) - allowed - set(boolean))
        if len(boolean) > 1 or extra:
            raise DefinitionError(
                f"a rule with {boolean[0]!r} may not also have {sorted(boolean[1:] + extra)}",
                state=state,
                field=field,
            )
        return _compile_boolean(boolean[0], rule[boolean[0]], state, f"{field}.{boolean[0]}")
    return _compile_comparison(rule, allowed, state, field)


def _compile_boolean(key: str, value: Any, state: str, field: str) -> Predicate:
    if key == "Not":
        inner = _compile(value, state, field, top_level=False)
        return lambda data, scope: not inner(data, scope)
    if not isinstance(value, list) or not value:
        raise DefinitionError(f"{key!r} needs a non-empty array of rules", state=state, field=field)
    parts = [
        _compile(item, state, f"{field}[{i}]", top_level=False) for i, item in enumerate(value)
    ]
    if key == "And":
        return lambda data, scope: all(part(data, scope) for part in parts)
    return lambda data, scope: any(part(data, scope) for part in parts)


def _compile_comparison(
    rule: Mapping[str, Any], allowed: set[str], state: str, field: str
) -> Predicate:
    operators = [key for key in rule if key in _COMPARISON_KEYS]
    unknown = sorted(set(rule) - allowed - set(operators) - {"Variable"})
    if unknown:
        raise DefinitionError(
            f"unknown field(s) {unknown} in a Choice rule", state=state, field=field
        )
    if len(operators) != 1:
        raise DefinitionError(
            "a comparison needs exactly one operator (StringEquals, NumericLessThan, IsPresent,"
            f" ...), found {operators or 'none'}",
            state=state,
            field=field,
        )
    name = operators[0]
    variable = _path(rule.get("Variable"), state, f"{field}.Variable", "Variable")
    value = rule[name]
    where = f"{field}.{name}"
    if name == "IsPresent" or name in _TYPE_TESTS:
        if not isinstance(value, bool):
            raise DefinitionError(f"{name} needs true or false", state=state, field=where)
        return _type_test(name, value, variable)
    if name == "StringMatches":
        if not isinstance(value, str):
            raise DefinitionError("StringMatches needs a pattern string", state=state, field=where)
        pattern = _wildcard_pattern(value)
        return _comparison(
            variable,
            lambda found, _: isinstance(found, str) and pattern.fullmatch(found) is not None,
            None,
            value,
        )
    if name.endswith("Path"):
        compare = OPERATORS[name[: -len("Path")]][0]
        other = _path(value, state, where, name)
        return _comparison(variable, compare, other, None)
    compare, valid, expected = OPERATORS[name]
    if not valid(value):
        raise DefinitionError(f"{name} needs {expected}, got {value!r}", state=state, field=where)
    return _comparison(variable, compare, None, value)


def _path(value: Any, state: str, field: str, what: str) -> JsonPath:
    if not isinstance(value, str):
        raise DefinitionError(f"{what} needs a path string such as '$.x'", state=state, field=field)
    try:
        return compile_path(value)
    except PathSyntaxError as exc:
        raise DefinitionError(str(exc), state=state, field=field) from None


def _lookup(path: JsonPath, data: Any, scope: Scope) -> Any:
    try:
        return path.find(data, scope)
    except PathNotFound:
        raise EvaluationError(
            RUNTIME,
            f"Invalid path '{path.text}': The choice state's condition path references an "
            "invalid value.",
        ) from None


def _comparison(
    variable: JsonPath, compare: _Compare, other: JsonPath | None, literal: Any
) -> Predicate:
    if other is None:
        return lambda data, scope: compare(_lookup(variable, data, scope), literal)
    return lambda data, scope: compare(_lookup(variable, data, scope), _lookup(other, data, scope))


def _type_test(name: str, expected: bool, variable: JsonPath) -> Predicate:
    test = _TYPE_TESTS.get(name)

    def predicate(data: Any, scope: Scope) -> bool:
        try:
            found = variable.find(data, scope)
        except PathNotFound:
            return not expected if name == "IsPresent" else False
        present_result = True if test is None else test(found)
        return present_result is expected

    return predicate


def _wildcard_pattern(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; ``\\*`` is a literal star, ``\\\\`` a backslash."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)
