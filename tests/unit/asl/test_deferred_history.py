"""A history written when read is the history written as the execution ran.

State inputs and outputs are kept as values and encoded to JSON text only when the
history is first read (strangler.instant.asl.history). These tests draw definitions
(chains of Pass, Task, Choice, Parallel and Map states with paths, templates and
ResultPaths) and inputs, and hold the deferred history to the one written at once, also
when handlers and callers change in place what they were given or returned.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.instant.asl import Execution, LambdaContext, StateMachine, tasks
from strangler.instant.asl.history import NOT_PLAIN, Deferred, Thread, stamp_time
from strangler.instant.asl.timestamps import format_timestamp
from tests.unit.asl.support import arn, machine

# Keys without ".$": a template would take them for paths.
_KEYS = st.text(alphabet="abcé", max_size=3)
_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner),
    max_leaves=6,
)
_OBJECT = st.dictionaries(st.sampled_from(["a", "b", "c"]), _JSON, max_size=3)
_RESULT_PATHS = st.sampled_from(["$", "$.a", "$.b.c", None])
_PATHS = st.sampled_from(["$", "$.a", None])


@contextmanager
def _written_at_once() -> Iterator[None]:
    """Encode every recorded value when it is recorded (as before the deferral), a Task's
    result included."""
    defer = Thread.defer

    def eager(self: Thread, value: Any) -> Deferred:
        deferred = defer(self, value)
        _ = deferred.text
        return deferred

    copy = tasks.plain_copy
    Thread.defer = eager  # type: ignore[method-assign]
    tasks.plain_copy = lambda _value: NOT_PLAIN  # a Task's result encoded and decoded
    try:
        yield
    finally:
        Thread.defer = defer  # type: ignore[method-assign]
        tasks.plain_copy = copy


def _meddling(event: Any, _context: LambdaContext) -> Any:
    """A handler that changes its event in place and returns it, then changes it again."""
    if isinstance(event, dict):
        event["seen"] = True
        result = {"got": event, "list": [1, 2]}
        _RETURNED.append(result)
        return result
    return {"got": event}


_RETURNED: list[dict[str, Any]] = []


def _scribble_on_returned() -> None:
    for result in _RETURNED:
        result["list"].append("changed")
        result["got"] = "changed"


@st.composite
def _state(draw: st.DrawFn, name: str, depth: int = 0) -> dict[str, Any]:
    kinds = ["Pass", "PassResult", "Task", "Choice"] + (["Parallel", "Map"] if depth < 1 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "Pass":
        return {
            "Type": "Pass",
            "Parameters": {"x.$": "$", "k": draw(_JSON)},
            "ResultPath": draw(_RESULT_PATHS),
        }
    if kind == "PassResult":
        return {"Type": "Pass", "Result": draw(_JSON), "ResultPath": draw(_RESULT_PATHS)}
    if kind == "Task":
        return {
            "Type": "Task",
            "Resource": arn("meddle"),
            "InputPath": draw(_PATHS),
            "ResultPath": draw(_RESULT_PATHS),
            "OutputPath": "$",
        }
    if kind == "Choice":
        return {"Type": "Choice", "Choices": [{"Variable": "$", "IsPresent": True, "Next": ""}]}
    branches = [_branch(draw(_state(f"{name}-{n}", depth + 1)), f"{name}-{n}") for n in (1, 2)]
    if kind == "Parallel":
        return {"Type": "Parallel", "Branches": branches, "ResultPath": "$.p"}
    return {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": branches[0],
        "ResultPath": "$.m",
        "MaxConcurrency": 1,
    }


def _branch(state: dict[str, Any], name: str) -> dict[str, Any]:
    """A one-state machine for a Parallel branch or a Map's items."""
    if state["Type"] == "Choice":
        state = {"Type": "Pass"}
    return {"StartAt": name, "States": {name: {**state, "End": True}}}


@st.composite
def _definition(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=6))
    states: dict[str, Any] = {}
    for index in range(count):
        state = draw(_state(f"S{index}"))
        following = f"S{index + 1}" if index + 1 < count else "End"
        if state["Type"] == "Choice":
            state["Choices"][0]["Next"] = following
            state["Default"] = following
        else:
            state["Next"] = following
        states[f"S{index}"] = state
    states["End"] = {"Type": "Succeed"}
    return {"StartAt": "S0", "States": states}


def _run(definition: dict[str, Any], value: Any) -> Execution:
    """One execution on a fake clock and a seeded random source; callers then scribble."""
    _RETURNED.clear()
    execution = machine(definition, {arn("meddle"): _meddling}).execute(value)
    _scribble_on_returned()
    if isinstance(execution.input, dict):
        execution.input["after"] = "changed"
    if isinstance(execution.output, dict):
        execution.output["after"] = "changed"
    return execution


@settings(max_examples=150, deadline=None)
@given(definition=_definition(), value=_OBJECT, items=st.lists(_JSON, max_size=3))
def test_a_history_written_when_read_is_the_one_written_at_once(
    definition: dict[str, Any], value: dict[str, Any], items: list[Any]
) -> None:
    """Same events, ids, times and JSON text, whatever the definition, the input, and
    whatever handlers and the caller change in place afterwards."""
    value = {**value, "items": items}
    with _written_at_once():
        expected = _run(definition, value)
    deferred = _run(definition, value)
    assert expected.status == deferred.status
    assert expected.history.events() == deferred.history.events()


@settings(max_examples=30, deadline=None)
@given(definition=_definition(), value=_OBJECT)
def test_a_deferred_history_reads_as_the_tuple_of_its_events(
    definition: dict[str, Any], value: dict[str, Any]
) -> None:
    """Equal to its tuple, indexable, sliceable, and pickled as that tuple."""
    history = _run(definition, {**value, "items": []}).history
    events = tuple(history)
    assert events == history
    assert list(events) == history
    assert events[-1] == history[-1]
    assert events[1:3] == history[1:3]
    assert len(events) == len(history)
    assert events == pickle.loads(pickle.dumps(history))  # noqa: S301 - pickled just above
    assert not any(
        isinstance(item, Deferred)
        for event in events
        for details in event.values()
        if isinstance(details, dict)
        for item in details.values()
    )


def test_the_default_clocks_times_are_written_as_the_datetimes_they_stand_for() -> None:
    """With the default clock, events hold POSIX times until the history is read; read,
    each is the aware datetime the run saw: the record's start and stop dates, the
    context's EnteredTime, and any reader of the events as recorded (stamp_time)."""
    entered: list[str] = []

    def handler(event: Any, _context: LambdaContext) -> Any:
        entered.append(event["entered"])
        return {"ok": True}

    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": arn("f"),
                "Parameters": {"entered.$": "$$.State.EnteredTime"},
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    before = datetime.now(UTC)
    execution = StateMachine(definition, {arn("f"): handler}).execute({})
    after = datetime.now(UTC)
    recorded = [stamp_time(event["timestamp"]) for event in execution.history.unwritten()]
    assert {type(event["timestamp"]) for event in execution.history.unwritten()} == {float}
    written = [event["timestamp"] for event in execution.history]
    assert written == recorded
    assert all(type(moment) is datetime and moment.tzinfo is UTC for moment in written)
    assert before - timedelta(seconds=1) <= written[0] <= written[-1] <= after
    assert written == sorted(written)
    assert (execution.start_date, execution.stop_date) == (written[0], written[-1])
    task_entered = next(e for e in execution.history if e["type"] == "TaskStateEntered")
    assert entered == [format_timestamp(task_entered["timestamp"])]


def test_an_injected_clocks_times_are_recorded_as_given() -> None:
    """Any other clock's datetimes are recorded as they are (naive ones as UTC)."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000)
    execution = StateMachine(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        {},
        clock=lambda: moment,
    ).execute({})
    stamps = {event["timestamp"] for event in execution.history.unwritten()}
    assert stamps == {moment.replace(tzinfo=UTC)}
