"""StepResults derived from execution histories, and the readable history text."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from strangler.instant.describe import describe, format_history
from strangler.instant.results import ExecutionResult
from strangler.instant.steps import (
    STEP_RESULT_FIELDS,
    event_time,
    parse_cause,
    steps_from_history,
)
from strangler.orders import Route, StepResult
from tests.unit.instant.history_builder import START, History

UNAVAILABLE = ("LegacyUnavailable", json.dumps({"errorMessage": "connection refused"}))


def _fulfilled() -> History:
    return (
        History()
        .started()
        .passed("Prepare")
        .task("ClaimOrder", {"decision": "claimed", "claimed": True})
        .task("FraudScan", {"decision": "pass"})
        .task("AuthorizePayment", {"decision": "authorized"})
        .task("FulfilOrder", {"decision": "fulfilled", "details": {"vouchers": ["V1"]}})
        .passed("Fulfilled")
        .succeeded({"outcome": "fulfilled"})
    )


def test_one_step_per_task_state_with_its_decision() -> None:
    """Each Task state becomes a StepResult named after the step, with the handler's decision."""
    steps = steps_from_history(_fulfilled().events, order_id="o-1", dry_run=False)
    assert [(s.step, s.decision) for s in steps] == [
        ("claim", "claimed"),
        ("fraud_scan", "pass"),
        ("authorize_payment", "authorized"),
        ("fulfill", "fulfilled"),
    ]
    assert {("o-1", Route.INSTANT, False, None)} == {
        (s.order_id, s.path, s.dry_run, s.error) for s in steps
    }
    assert steps[3].payload["details"]["vouchers"] == ["V1"]


def test_step_results_are_what_the_dataclass_builds() -> None:
    """The StepResults, their slots set directly, equal those StepResult's own __init__
    builds from the same fields (equal, same repr, frozen); the fields set are
    StepResult's, in its order."""
    history = (
        History()
        .started()
        .task("FraudScan", {"decision": "pass"}, failures=(UNAVAILABLE,))
        .task("FulfilOrder", None, failures=(UNAVAILABLE,), exit_on_failure=True)
        .task("ReleaseToLegacy", {"decision": "released", "released": True})
        .succeeded({"outcome": "fell_back"})
    )
    steps = steps_from_history(history.events, order_id="o-1", dry_run=True)
    rebuilt = [StepResult(**{f: getattr(s, f) for f in STEP_RESULT_FIELDS}) for s in steps]
    assert [(r, repr(r)) for r in rebuilt] == [(s, repr(s)) for s in steps]
    assert [(s.step, s.error is None, s.dry_run) for s in steps] == [
        ("fraud_scan", True, True),
        ("fulfill", False, True),
        ("release", True, True),
    ]
    assert tuple(f.name for f in dataclasses.fields(StepResult)) == STEP_RESULT_FIELDS
    assert StepResult.__slots__ == STEP_RESULT_FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        steps[0].step = "changed"  # type: ignore[misc]


def test_step_times_span_entered_to_exited() -> None:
    """A step starts when its state is entered and finishes when it is exited."""
    claim = steps_from_history(_fulfilled().events, order_id="o-1", dry_run=False)[0]
    assert (START + timedelta(milliseconds=3), START + timedelta(milliseconds=7)) == (
        claim.started_at,
        claim.finished_at,
    )


def test_retried_attempts_are_kept_in_the_payload() -> None:
    """A step that succeeded after retries lists each failed attempt's error."""
    history = (
        History()
        .started()
        .task("FraudScan", {"decision": "pass"}, failures=(UNAVAILABLE, UNAVAILABLE))
        .succeeded({})
    )
    (step,) = steps_from_history(history.events, order_id="o-1", dry_run=False)
    assert (step.decision, step.error) == ("pass", None)
    assert (
        step.payload["attempt_errors"]
        == [{"error": "LegacyUnavailable", "cause": "connection refused"}] * 2
    )


def test_a_caught_failure_is_an_errored_step_then_release() -> None:
    """A step whose last attempt failed has no decision and the error; release follows."""
    conflict = ("ClaimConflict", json.dumps({"errorMessage": "not_claimed"}))
    history = (
        History()
        .started()
        .task("FulfilOrder", None, failures=(conflict,))
        .task("ReleaseToLegacy", {"decision": "released", "released": True})
        .passed("FellBack")
        .succeeded({"outcome": "fell_back"})
    )
    fulfil, release = steps_from_history(history.events, order_id="o-1", dry_run=False)
    assert (
        fulfil.step,
        fulfil.decision,
        fulfil.error,
    ) == ("fulfill", None, "ClaimConflict: not_claimed")
    assert fulfil.finished_at == release.started_at
    assert (release.step, release.decision) == ("release", "released")


def test_a_failure_that_ends_the_execution_closes_the_step() -> None:
    """When release itself fails the execution ends; the step still ends, with the error."""
    history = History().started().task("ReleaseToLegacy", None, failures=(UNAVAILABLE,))
    history.add("ExecutionFailed", error="LegacyUnavailable", cause="x")
    (release,) = steps_from_history(history.events, order_id="o-1", dry_run=True)
    assert (
        release.step,
        release.error,
        release.dry_run,
    ) == ("release", "LegacyUnavailable: connection refused", True)


def test_a_running_step_is_left_out() -> None:
    """A step with no end yet is not reported."""
    history = History().started().task("ClaimOrder", {"decision": "claimed"})
    history.add("TaskStateEntered", name="FraudScan", input="{}")
    assert [s.step for s in steps_from_history(history.events, order_id="o", dry_run=False)] == [
        "claim"
    ]


def test_lambda_invoke_integration_payload_is_unwrapped() -> None:
    """With arn:aws:states:::lambda:invoke the handler's result is read from Payload."""
    history = History().started().add("TaskStateEntered", name="FraudScan", input="{}")
    history.add("TaskScheduled", resource="invoke", resourceType="lambda", region="x")
    output = {"Payload": {"decision": "reject"}, "StatusCode": 200}
    history.add("TaskSucceeded", output=json.dumps(output), resource="invoke")
    history.add("TaskStateExited", name="FraudScan", output="{}")
    (step,) = steps_from_history(history.events, order_id="o", dry_run=False)
    assert step.decision == "reject"


def test_states_that_are_not_steps_are_ignored() -> None:
    """Pass and Choice states leave no StepResult."""
    history = History().started().passed("Prepare").passed("Fulfilled").succeeded({})
    assert steps_from_history(history.events, order_id="o", dry_run=False) == ()


@pytest.mark.parametrize(
    "stamp",
    ["2025-01-31T12:00:00Z", "2025-01-31T12:00:00+00:00", 1738324800.0, START.replace(tzinfo=None)],
    ids=["iso-z", "iso-offset", "epoch", "naive-datetime"],
)
def test_event_times_in_any_shape_become_aware_datetimes(stamp: object) -> None:
    """Timestamps from boto3, JSON or epoch seconds all read as the same aware datetime."""
    assert event_time({"timestamp": stamp}) == START


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ('{"errorMessage": "boom", "errorType": "X"}', "boom"),
        ("not json", "not json"),
        ('["json", "list"]', '["json", "list"]'),
        (None, ""),
    ],
    ids=["lambda-json", "text", "other-json", "none"],
)
def test_parse_cause(cause: str | None, expected: str) -> None:
    """A cause reads as Lambda's message when it is Lambda's JSON, else as given."""
    assert expected == parse_cause(cause)


def test_format_history_is_one_line_per_event() -> None:
    """The readable history shows offset, type, state and the key detail of each event."""
    text = format_history(_fulfilled().events)
    lines = text.splitlines()
    assert len(_fulfilled().events) == len(lines)
    assert "ExecutionStarted" in lines[0]
    assert '{"order_id":"o-1"}' in lines[0]
    assert "TaskStateEntered" in lines[3]
    assert "ClaimOrder" in lines[3]
    assert lines[-1].split()[:3] == ["25.0", "ms", "ExecutionSucceeded"]


def test_format_history_shows_errors_readably() -> None:
    """A failed attempt shows its error name and Lambda's message."""
    history = History().task("FraudScan", {"decision": "pass"}, failures=(UNAVAILABLE,))
    assert "LegacyUnavailable: connection refused" in format_history(history.events)


def test_describe_summarises_the_execution() -> None:
    """describe() heads the history with the outcome, timing and one line per step."""
    events = _fulfilled().events
    result = ExecutionResult(
        execution_id="arn:exec",
        order_id="o-1",
        status="SUCCEEDED",
        dry_run=False,
        started_at=START,
        finished_at=START + timedelta(milliseconds=25),
        outcome="fulfilled",
        steps=steps_from_history(events, order_id="o-1", dry_run=False),
        history=tuple(events),
    )
    text = describe(result)
    assert "order o-1  SUCCEEDED  outcome=fulfilled  dry_run=false in 25.0 ms" in text
    assert "  fulfill            fulfilled          4.0 ms" in text
    assert text.endswith(format_history(events))
