"""StepFunctionsBackend against botocore's Stubber: the calls it makes and the errors it maps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.stub import Stubber

from strangler.instant.definition import execution_name
from strangler.instant.exceptions import ExecutionError, StepFunctionsError
from strangler.instant.local_backend import LocalBackend
from strangler.instant.stepfunctions_backend import StepFunctionsBackend, start_order_execution
from strangler.legacy_adapter import LegacyUnavailable
from strangler.orders import OrderNotification
from tests.unit.instant.fakes import FakeLegacy
from tests.unit.instant.history_builder import START, History

ALIAS = "arn:aws:states:us-east-1:123456789012:stateMachine:pipe:live"
ORDER = OrderNotification(order_id="o-1", user_guid="u-1", unit_id="unit-1")
NAME = execution_name("o-1")
EXEC_ARN = f"arn:aws:states:us-east-1:123456789012:execution:pipe:{NAME}"
INPUT = json.dumps({"order_id": "o-1", "dry_run": False})


class FakeTime:
    """A clock that moves only when the backend sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def sfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _described(status: str, output: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "executionArn": EXEC_ARN,
        "stateMachineArn": ALIAS.rsplit(":", 1)[0],
        "status": status,
        "startDate": START,
    }
    if output is not None:
        answer.update(output=json.dumps(output), stopDate=START + timedelta(milliseconds=40))
    return answer


def _history() -> list[dict[str, Any]]:
    return (
        History()
        .started()
        .task("ClaimOrder", {"decision": "claimed", "claimed": True})
        .task("FraudScan", {"decision": "reject"})
        .passed("RejectedFraud")
        .succeeded({"outcome": "rejected_fraud"})
        .events
    )


def test_run_starts_through_the_alias_polls_and_reads_all_history(sfn: Any) -> None:
    """A run starts the order-named execution, polls until done, and pages through history."""
    client, stubber = sfn
    time = FakeTime()
    events = _history()
    stubber.add_response(
        "start_execution",
        {"executionArn": EXEC_ARN, "startDate": START},
        {"stateMachineArn": ALIAS, "name": NAME, "input": INPUT},
    )
    stubber.add_response("describe_execution", _described("RUNNING"), {"executionArn": EXEC_ARN})
    stubber.add_response(
        "describe_execution",
        _described("SUCCEEDED", {"outcome": "rejected_fraud", "order_id": "o-1"}),
        {"executionArn": EXEC_ARN},
    )
    stubber.add_response(
        "get_execution_history",
        {"events": events[:5], "nextToken": "page-2"},
        {"executionArn": EXEC_ARN, "maxResults": 1000},
    )
    stubber.add_response(
        "get_execution_history",
        {"events": events[5:]},
        {"executionArn": EXEC_ARN, "maxResults": 1000, "nextToken": "page-2"},
    )
    backend = StepFunctionsBackend(
        ALIAS, sfn_client=client, poll_interval_s=0.2, clock=time.clock, sleeper=time.sleep
    )
    result = backend.run(ORDER)
    assert (
        result.status,
        result.outcome,
        result.execution_id,
    ) == ("SUCCEEDED", "rejected_fraud", EXEC_ARN)
    assert [(s.step, s.decision) for s in result.steps] == [
        ("claim", "claimed"),
        ("fraud_scan", "reject"),
    ]
    assert len(events) == len(result.history)
    assert time.sleeps == [0.2]
    assert START + timedelta(milliseconds=40) == result.finished_at


def test_a_second_start_attaches_to_the_existing_execution(sfn: Any) -> None:
    """ExecutionAlreadyExists means this order's execution exists: the backend reads it."""
    client, stubber = sfn
    stubber.add_client_error(
        "start_execution",
        service_error_code="ExecutionAlreadyExists",
        service_message=f"Execution Already Exists: '{EXEC_ARN}'",
        http_status_code=400,
    )
    stubber.add_response(
        "describe_execution",
        _described("SUCCEEDED", {"outcome": "rejected_fraud"}),
        {"executionArn": EXEC_ARN},
    )
    stubber.add_response("get_execution_history", {"events": _history()}, None)
    result = StepFunctionsBackend(ALIAS, sfn_client=client).run(ORDER)
    assert (result.outcome, len(result.steps)) == ("rejected_fraud", 2)


def test_start_order_execution_reports_whether_it_started(sfn: Any) -> None:
    """The shared start helper says False for an execution that already existed."""
    client, stubber = sfn
    stubber.add_response("start_execution", {"executionArn": EXEC_ARN, "startDate": START})
    stubber.add_client_error("start_execution", service_error_code="ExecutionAlreadyExists")
    first = start_order_execution(client, ALIAS, "o-1")
    second = start_order_execution(client, ALIAS, "o-1")
    assert [
        (first.arn, first.started),
        (second.arn, second.started),
    ] == [(EXEC_ARN, True), (EXEC_ARN, False)]


def test_timeout_returns_a_running_result_with_the_steps_so_far(sfn: Any) -> None:
    """When the wait runs out the result is RUNNING, and a later run attaches again."""
    client, stubber = sfn
    time = FakeTime()
    stubber.add_response("start_execution", {"executionArn": EXEC_ARN, "startDate": START})
    for _ in range(3):
        stubber.add_response("describe_execution", _described("RUNNING"))
    partial = History().started().task("ClaimOrder", {"decision": "claimed"}).events
    stubber.add_response("get_execution_history", {"events": partial})
    backend = StepFunctionsBackend(
        ALIAS, sfn_client=client, poll_interval_s=1.0, clock=time.clock, sleeper=time.sleep
    )
    result = backend.run(ORDER, timeout_s=2.0)
    assert (result.status, result.outcome, result.finished_at) == ("RUNNING", None, None)
    assert [s.step for s in result.steps] == ["claim"]
    assert time.sleeps == [1.0, 1.0]


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("ThrottlingException", True),
        ("StateMachineDoesNotExist", False),
        ("AccessDeniedException", False),
        ("InvalidName", False),
    ],
    ids=["throttled", "no-machine", "denied", "bad-name"],
)
def test_client_errors_become_step_functions_errors(sfn: Any, code: str, retryable: bool) -> None:
    """Every AWS refusal is a StepFunctionsError naming the call and code; botocore stays inside."""
    client, stubber = sfn
    stubber.add_client_error("start_execution", service_error_code=code, service_message="no")
    with pytest.raises(StepFunctionsError) as raised:
        StepFunctionsBackend(ALIAS, sfn_client=client).run(ORDER)
    error = raised.value
    assert ("StartExecution", code, retryable, NAME) == (
        error.operation,
        error.code,
        error.retryable,
        error.target,
    )
    assert isinstance(error.__cause__, ClientError)
    assert not isinstance(error, ClientError | BotoCoreError)
    assert isinstance(error, ExecutionError)


def test_errors_while_polling_are_translated(sfn: Any) -> None:
    """A refusal after the start (DescribeExecution) is translated too, naming the execution."""
    client, stubber = sfn
    stubber.add_response("start_execution", {"executionArn": EXEC_ARN, "startDate": START})
    stubber.add_client_error("describe_execution", service_error_code="ExecutionDoesNotExist")
    with pytest.raises(StepFunctionsError) as raised:
        StepFunctionsBackend(ALIAS, sfn_client=client).run(ORDER)
    assert (raised.value.operation, raised.value.target) == ("DescribeExecution", EXEC_ARN)


class _Unreachable:
    """A client whose every call fails before any answer, as with no network."""

    def start_execution(self, **_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com")


def test_connection_failures_become_retryable_errors() -> None:
    """No answer at all is a retryable StepFunctionsError, caused by botocore's error."""
    with pytest.raises(StepFunctionsError) as raised:
        StepFunctionsBackend(ALIAS, sfn_client=_Unreachable()).run(ORDER)
    assert (raised.value.code, raised.value.retryable) == ("EndpointConnectionError", True)
    assert isinstance(raised.value.__cause__, EndpointConnectionError)


@pytest.mark.parametrize(
    "arn",
    ["", "arn:aws:lambda:us-east-1:123456789012:function:f", "pipe"],
    ids=["empty", "lambda-arn", "bare-name"],
)
def test_a_wrong_arn_is_refused_up_front(arn: str) -> None:
    """The backend refuses an ARN that is not a state machine's before any call."""
    with pytest.raises(ValueError, match="not a state machine ARN"):
        StepFunctionsBackend(arn, sfn_client=_Unreachable())


def test_poll_interval_must_be_positive() -> None:
    """A zero poll interval would spin; it is refused."""
    with pytest.raises(ValueError, match="poll_interval_s"):
        StepFunctionsBackend(ALIAS, sfn_client=_Unreachable(), poll_interval_s=0)


def test_local_history_reads_the_same_through_the_aws_api_shape(sfn: Any) -> None:
    """A local execution's history passes botocore's response model and gives the same steps.

    The StepFunctionsBackend reads it as GetExecutionHistory would return it, so what the
    local backend records is what the AWS backend would record for the same run.
    """
    client, stubber = sfn
    legacy = FakeLegacy()
    legacy.fail("fraud_scan", [LegacyUnavailable("refused")])
    with LocalBackend(legacy, sleeper=lambda _: None) as local:
        expected = local.run(ORDER)
    stubber.add_response("start_execution", {"executionArn": EXEC_ARN, "startDate": START})
    stubber.add_response(
        "describe_execution",
        {**_described("SUCCEEDED", dict(expected.output or {})), "stopDate": START},
    )
    stubber.add_response("get_execution_history", {"events": list(expected.history)})
    result = StepFunctionsBackend(ALIAS, sfn_client=client).run(ORDER)
    assert result.steps == expected.steps
    assert result.outcome == expected.outcome == "fulfilled"
