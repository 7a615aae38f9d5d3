"""A handler's event is a fresh copy of its Parameters, equal to what decoding gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.instant.asl.history import dumps
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
