"""steps_from_history's event dispatch gives what the plain scan over every event gave.

The reference below is the scan as it was before the dispatch by event type (kept here,
verbatim in behaviour, to compare against); histories are drawn from every event type
the scan knows, types it does not, and events whose details sit under an unexpected name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler.instant.definition import STEP_OF_STATE
from strangler.instant.steps import (
    _EXECUTION_END,
    _FAILED,
    _SUCCEEDED,
    _OpenStep,
    _task_output,
    event_details,
    event_time,
    parse_cause,
    steps_from_history,
)
from strangler.orders import StepResult

START = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


def _reference(
    history: Iterable[Mapping[str, Any]], *, order_id: str, dry_run: bool
) -> tuple[StepResult, ...]:
    results: list[StepResult] = []
    current: _OpenStep | None = None
    for event in history:
        kind = str(event.get("type", ""))
        if current is not None and (
            kind == "TaskStateExited" or kind.endswith("StateEntered") or kind in _EXECUTION_END
        ):
            results.append(current.close(order_id, event_time(event), dry_run))
            current = None
        if kind == "TaskStateEntered":
            name = event_details(event).get("name")
            if isinstance(name, str) and name in STEP_OF_STATE:
                current = _OpenStep(step=STEP_OF_STATE[name], started_at=event_time(event))
        elif current is not None and kind in _SUCCEEDED:
            current.output = _task_output(event_details(event).get("output"))
        elif current is not None and kind in _FAILED:
            details = event_details(event)
            current.errors.append(
                {
                    "error": str(details.get("error") or "Unknown"),
                    "cause": parse_cause(details.get("cause")),
                }
            )
    return tuple(results)


_TYPES = sorted(
    {
        "TaskStateEntered",
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ChoiceStateEntered",
        "MapStateEntered",
        "CustomStateEntered",
        "ExecutionStarted",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "MapIterationStarted",
        "SomethingNew",
        *_SUCCEEDED,
        *_FAILED,
        *_EXECUTION_END,
    }
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=3,
)
_OUTPUT = st.one_of(
    _JSON.map(json.dumps),
    st.fixed_dictionaries({"decision": st.sampled_from(["pass", "claimed", "x"])}).map(json.dumps),
    st.fixed_dictionaries({"Payload": _JSON, "StatusCode": st.just(200)}),
    # A decoded value (boto3 may give one); a bare string there would be JSON text.
    _JSON.filter(lambda value: not isinstance(value, str)),
)
_CAUSE = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.text(max_size=8).map(lambda m: json.dumps({"errorMessage": m})),
)


def _usual_details_key(kind: str) -> str:
    """Where GetExecutionHistory puts an event's details (state events share two names)."""
    for suffix in ("StateEntered", "StateExited"):
        if kind.endswith(suffix):
            return "state" + suffix.removeprefix("State") + "EventDetails"
    return kind[0].lower() + kind[1:] + "EventDetails"


@st.composite
def _event(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(_TYPES))
    at = START + timedelta(milliseconds=index)
    event: dict[str, Any] = {
        "id": index + 1,
        "type": kind,
        "timestamp": draw(st.sampled_from([at, at.isoformat(), at.replace(tzinfo=None)])),
    }
    details = {
        "name": draw(st.sampled_from([*STEP_OF_STATE, "Prepare", "Done"])),
        "output": draw(_OUTPUT),
        "error": draw(st.sampled_from([None, "LegacyUnavailable", "States.Timeout"])),
        "cause": draw(_CAUSE),
    }
    usual = _usual_details_key(kind)
    # Most events keep details under their usual name; some under another one.
    key = draw(st.sampled_from([usual, usual, usual, "stateEnteredEventDetails", "other"]))
    if draw(st.booleans()) or kind != "LambdaFunctionStarted":
        event[key] = details
    return event


@st.composite
def _history(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=40))
    return [draw(_event(index)) for index in range(count)]


@settings(max_examples=150, deadline=None)
@given(history=_history(), dry_run=st.booleans())
def test_the_dispatch_gives_what_the_plain_scan_gave(
    history: list[dict[str, Any]], dry_run: bool
) -> None:
    """Same steps, decisions, errors, payloads and times, for any history."""
    assert steps_from_history(history, order_id="o-1", dry_run=dry_run) == _reference(
        history, order_id="o-1", dry_run=dry_run
    )
