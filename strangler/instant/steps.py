"""StepResult records derived from an execution history, the same way for both backends.

The history is a sequence of events shaped like Step Functions' GetExecutionHistory
events (the local executor writes them so; boto3 returns them so). A step runs from its
Task state's ``TaskStateEntered`` until ``TaskStateExited`` (or the next state entered,
or the end of the execution when a Catch moved on). In between, each attempt leaves a
``LambdaFunctionSucceeded`` or ``...Failed``/``...TimedOut`` event (``Task...`` events
for the ``arn:aws:states:::lambda:invoke`` form). Pure functions; no IO.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strangler.instant.asl.history import Deferred
from strangler.instant.definition import STEP_OF_STATE
from strangler.orders import Route, StepResult

__all__ = ["event_details", "event_time", "parse_cause", "steps_from_history"]

_SUCCEEDED = frozenset({"LambdaFunctionSucceeded", "TaskSucceeded"})
_FAILED = frozenset(
    {
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStartFailed",
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
    }
)
_EXECUTION_END = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
)
# What an event does to the step open at it: feed it (an attempt's end) or close it (a
# state entered or exited, the execution's end). Events of no other type are skipped.
_FEEDS, _CLOSES = "feeds", "closes"
_STATE_ENTERED = (
    "TaskStateEntered",
    "PassStateEntered",
    "ChoiceStateEntered",
    "WaitStateEntered",
    "SucceedStateEntered",
    "FailStateEntered",
    "ParallelStateEntered",
    "MapStateEntered",
)
_ROLES: dict[str, str] = {
    **dict.fromkeys(_SUCCEEDED | _FAILED, _FEEDS),
    **dict.fromkeys(("TaskStateExited", *_STATE_ENTERED, *_EXECUTION_END), _CLOSES),
}
# Every event type met so far and its role (None: skipped), so that an event is one
# lookup; up to _MAX_ROLES_KEPT types (a history read from AWS may hold any).
_ROLE_OF: dict[str, str | None] = dict(_ROLES)
_MAX_ROLES_KEPT = 512
_UNSEEN = "unseen"
# Where each looked-into event keeps its details (GetExecutionHistory's member names);
# an event without that member is searched like any other (see event_details).
_DETAILS_KEY = {
    "TaskStateEntered": "stateEnteredEventDetails",
    **{kind: kind[0].lower() + kind[1:] + "EventDetails" for kind in (*_SUCCEEDED, *_FAILED)},
}


@dataclass(slots=True)
class _OpenStep:
    step: str
    started_at: datetime
    output: Mapping[str, Any] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    owned: bool = False  # ``output`` is a fresh dict of this step's own: no copy needed

    def close(self, order_id: str, finished_at: datetime, dry_run: bool) -> StepResult:
        output = self.output
        payload: dict[str, Any] = (
            output if self.owned and type(output) is dict else dict(output or {})
        )
        if self.errors:
            payload["attempt_errors"] = list(self.errors)
        error = None
        if self.output is None:
            last = self.errors[-1] if self.errors else {"error": "Unknown", "cause": ""}
            error = f"{last['error']}: {last['cause']}" if last["cause"] else last["error"]
        decision = self.output.get("decision") if self.output is not None else None
        return _step_result(
            order_id,
            self.step,
            decision if isinstance(decision, str) else None,
            self.started_at,
            finished_at,
            payload,
            error,
            dry_run,
        )


# StepResult's fields in its slots' order, each set straight through its slot's
# descriptor: what the frozen dataclass's __init__ does through object.__setattr__, at 40 %
# of its CPU (four results an order). tests/unit/instant/test_steps.py holds this to
# StepResult's own fields.
STEP_RESULT_FIELDS = (
    "order_id",
    "path",
    "step",
    "decision",
    "started_at",
    "finished_at",
    "payload",
    "error",
    "dry_run",
)
(
    _SET_ORDER_ID,
    _SET_PATH,
    _SET_STEP,
    _SET_DECISION,
    _SET_STARTED_AT,
    _SET_FINISHED_AT,
    _SET_PAYLOAD,
    _SET_ERROR,
    _SET_DRY_RUN,
) = (getattr(StepResult, name).__set__ for name in STEP_RESULT_FIELDS)
_new = object.__new__


def _step_result(
    order_id: str,
    step: str,
    decision: str | None,
    started_at: datetime,
    finished_at: datetime,
    payload: dict[str, Any],
    error: str | None,
    dry_run: bool,
) -> StepResult:
    """``StepResult(order_id=order_id, path=Route.INSTANT, step=step, ...)``, built faster."""
    result: StepResult = _new(StepResult)
    _SET_ORDER_ID(result, order_id)
    _SET_PATH(result, Route.INSTANT)
    _SET_STEP(result, step)
    _SET_DECISION(result, decision)
    _SET_STARTED_AT(result, started_at)
    _SET_FINISHED_AT(result, finished_at)
    _SET_PAYLOAD(result, payload)
    _SET_ERROR(result, error)
    _SET_DRY_RUN(result, dry_run)
    return result


def steps_from_history(
    history: Iterable[Mapping[str, Any]], *, order_id: str, dry_run: bool
) -> tuple[StepResult, ...]:
    """One StepResult per Task state that ran to an end, in the order they ran.

    ``decision`` is the handler's ``decision``; ``error`` is set when the step ended
    without a result (``"Error: message"`` of its last attempt); errors of attempts that
    were retried are listed in ``payload["attempt_errors"]``. A step still running is
    left out. ``path`` is always instant; ``dry_run`` tells shadow runs apart.
    """
    results: list[StepResult] = []
    current: _OpenStep | None = None
    for event in history:
        kind = event.get("type", "")
        if type(kind) is not str:
            kind = str(kind)
        # Only the events that open, feed or close a step are looked into (most are not).
        role = _ROLE_OF.get(kind, _UNSEEN)
        if role is _UNSEEN:
            role = _role(kind)
        if role is None:
            continue
        if current is not None and role is not _FEEDS:
            results.append(current.close(order_id, event_time(event), dry_run))
            current = None
        if kind == "TaskStateEntered":
            name = _details(event, kind).get("name")
            if isinstance(name, str) and name in STEP_OF_STATE:
                current = _OpenStep(step=STEP_OF_STATE[name], started_at=event_time(event))
        elif current is not None and kind in _SUCCEEDED:
            raw = _details(event, kind).get("output")
            current.output = _task_output(raw)
            current.owned = type(raw) is Deferred or isinstance(raw, str)  # copied or decoded
        elif current is not None and kind in _FAILED:
            details = _details(event, kind)
            current.errors.append(
                {
                    "error": str(details.get("error") or "Unknown"),
                    "cause": parse_cause(details.get("cause")),
                }
            )
    return tuple(results)


def _role(kind: str) -> str | None:
    """What an event of type ``kind`` does to the open step (see _ROLES); remembered."""
    role = _ROLES.get(kind) or (_CLOSES if kind.endswith("StateEntered") else None)
    if len(_ROLE_OF) < _MAX_ROLES_KEPT:  # bounded: types come from outside too
        _ROLE_OF[kind] = role
    return role


def event_details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``...EventDetails`` member of a history event (empty when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict | Mapping):
            return value
    return {}


def event_time(event: Mapping[str, Any]) -> datetime:
    """An event's timestamp as an aware datetime (boto3 gives datetimes; JSON gives text)."""
    value = event.get("timestamp")
    if type(value) is float:  # a local execution's history as recorded (see stamp_time)
        return _from_posix(value, UTC)
    if type(value) is datetime and value.tzinfo is not None:  # as boto3 gives it
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"history event {event.get('id')!r} has no usable timestamp: {value!r}")


_from_posix = datetime.fromtimestamp


def parse_cause(cause: Any) -> str:
    """A failure's cause as one readable line: Lambda's JSON ``errorMessage`` when present."""
    if not isinstance(cause, str):
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, Mapping) and isinstance(parsed.get("errorMessage"), str):
        return str(parsed["errorMessage"])
    return cause


def _details(event: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The details of an event of type ``kind``, found by their member's name first."""
    details = event.get(_DETAILS_KEY[kind])
    if type(details) is dict or isinstance(details, Mapping):
        return details
    return event_details(event)


def _task_output(raw: Any) -> Mapping[str, Any]:
    # A local execution's history as recorded holds the result itself (Deferred): a
    # fresh copy of it is what decoding its text would give, at a third of the cost.
    if type(raw) is Deferred:
        value = raw.fresh()
    else:
        value = json.loads(raw) if isinstance(raw, str) else raw
    mapping = type(value) is dict or isinstance(value, Mapping)
    # The lambda:invoke integration wraps the handler's result in Payload.
    if mapping and "Payload" in value and "StatusCode" in value:
        value = value["Payload"]
        mapping = isinstance(value, Mapping)
    return value if mapping else {"result": value}
