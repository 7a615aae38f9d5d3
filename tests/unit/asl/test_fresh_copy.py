"""A handler's event is a fresh copy of its Parameters, and a Task's result a fresh copy
of the handler's, each equal to what decoding its JSON text gives."""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.instant.asl.history import NOT_PLAIN, Deferred, dumps, plain_copy
from strangler.instant.asl.tasks import fresh_copy

_SCALAR = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
_VALUE = st.recursive(
    _SCALAR | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.dictionaries(st.text(max_size=6), _SCALAR, max_size=6),  # the usual Parameters
        st.dictionaries(st.integers() | st.booleans(), _SCALAR, max_size=3),  # keys JSON changes
        _VALUE,
    )
)
def test_equals_the_json_round_trip_and_shares_nothing(value: Any) -> None:
    """Same value, same types (True stays True, 1 stays 1), and no container shared."""
    text = dumps(value)
    copy = fresh_copy(value, text)
    decoded = json.loads(text)
    assert copy == decoded
    assert dumps(copy) == text
    if isinstance(value, dict | list):
        assert copy is not value
    if isinstance(copy, dict):
        copy["added"] = 1  # changing the handler's event leaves the Parameters as they were
        assert dumps(value) == text


_PLAIN = st.recursive(
    _SCALAR | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_PLAIN)
def test_a_plain_copy_is_the_json_round_trip_and_shares_nothing(value: Any) -> None:
    """Plain JSON values (NaN and infinities too) copy to what decoding their text gives,
    encode to the same text, and share no container with the original."""
    text = dumps(value)
    copy = plain_copy(value)
    assert dumps(copy) == text
    assert dumps(json.loads(text)) == text
    assert dumps(Deferred(value).fresh()) == text
    containers = _containers(value)
    assert not any(id(inner) in containers for inner in _containers(copy).values())


class _Level(IntEnum):
    ONE = 1


class _Text(str):
    pass


def _cycle() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "a"},
        {"a": {1, 2}},
        [_Level.ONE],
        {"a": _Text("b")},
        _cycle(),
        _deep(70),
        {"a": [{"b": (1,)}]},
    ],
)
def test_what_json_would_change_or_refuse_is_not_plain(value: Any) -> None:
    """Tuples, non-string keys, sets, subclasses, cycles and very deep values are left to
    the encoder (which converts or refuses them): plain_copy answers NOT_PLAIN."""
    assert plain_copy(value) is NOT_PLAIN


def test_a_deep_value_within_the_limit_is_copied() -> None:
    value = _deep(60)
    assert plain_copy(value) == value


def _containers(value: Any) -> dict[int, Any]:
    found: dict[int, Any] = {}
    todo = [value]
    while todo:
        current = todo.pop()
        if isinstance(current, dict):
            found[id(current)] = current
            todo += current.values()
        elif isinstance(current, list):
            found[id(current)] = current
            todo += current
    return found
