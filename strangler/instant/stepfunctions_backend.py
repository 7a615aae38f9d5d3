"""The instant pipeline on AWS Step Functions + Lambda, through boto3.

Every execution is started through the state machine's alias (immutable deployment:
a rollback moves the alias) with a name derived from the order, so Step Functions itself
refuses a second execution for the same order; the backend then attaches to the one that
exists. botocore errors are translated here, at the boundary, into
:class:`~strangler.instant.exceptions.StepFunctionsError`; none leaks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from strangler.instant.definition import (
    execution_arn,
    execution_name,
    pipeline_input,
    state_machine_region,
)
from strangler.instant.exceptions import StepFunctionsError
from strangler.instant.results import ExecutionResult
from strangler.instant.steps import steps_from_history
from strangler.orders import OrderNotification

__all__ = ["StartedExecution", "StepFunctionsBackend", "start_order_execution"]

log = structlog.get_logger()

_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
    }
)


@dataclass(frozen=True, slots=True)
class StartedExecution:
    """An order's execution: its ARN, and whether this call started it (False: it existed)."""

    arn: str
    started: bool


def start_order_execution(
    sfn_client: Any, state_machine_arn: str, order_id: str, *, dry_run: bool = False
) -> StartedExecution:
    """Start the order's execution, or find the one that exists (idempotent).

    Step Functions answers ``ExecutionAlreadyExists`` for a name in use (running with
    other input, or closed within 90 days); that is this order's execution, so its ARN
    is returned with ``started`` False. Raises StepFunctionsError for any other failure.
    """
    name = execution_name(order_id, dry_run=dry_run)
    payload = json.dumps(pipeline_input(order_id, dry_run=dry_run))
    try:
        answer = sfn_client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=payload
        )
    except ClientError as exc:
        if _error_code(exc) == "ExecutionAlreadyExists":
            log.info("instant_execution_exists", order_id=order_id, execution=name)
            return StartedExecution(arn=execution_arn(state_machine_arn, name), started=False)
        raise _translate("StartExecution", name, exc) from exc
    except BotoCoreError as exc:
        raise _translate("StartExecution", name, exc) from exc
    log.info("instant_execution_started", order_id=order_id, execution=name, dry_run=dry_run)
    return StartedExecution(arn=str(answer["executionArn"]), started=True)


class StepFunctionsBackend:
    """Runs the pipeline on AWS Step Functions (an :class:`InstantBackend`).

    ``state_machine_arn`` is the alias ARN (``...:stateMachine:NAME:live``); a version or
    the unqualified ARN also works. ``sfn_client`` defaults to a boto3 client for the
    ARN's region with connect/read timeouts and standard retries.
    """

    def __init__(
        self,
        state_machine_arn: str,
        *,
        sfn_client: Any | None = None,
        poll_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], None] = time.sleep,
    ) -> None:
        state_machine_region(state_machine_arn)  # validates the ARN, naming it if wrong
        if poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be positive, got {poll_interval_s}")
        self.state_machine_arn = state_machine_arn
        self._sfn = sfn_client if sfn_client is not None else _default_client(state_machine_arn)
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        self._sleeper = sleeper

    def run(
        self, order: OrderNotification, *, dry_run: bool = False, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Start (or attach to) the order's execution and wait until it ends or times out.

        Returns a RUNNING result, with the steps finished so far, when ``timeout_s``
        passes first; calling again attaches to the same execution. Raises
        StepFunctionsError when AWS cannot be asked.
        """
        started = start_order_execution(
            self._sfn, self.state_machine_arn, order.order_id, dry_run=dry_run
        )
        description = self._wait(started.arn, timeout_s)
        return self.result(started.arn, order.order_id, dry_run=dry_run, description=description)

    def result(
        self,
        arn: str,
        order_id: str,
        *,
        dry_run: bool,
        description: Mapping[str, Any] | None = None,
    ) -> ExecutionResult:
        """The record of execution ``arn`` as it stands now: status, output and steps."""
        if description is None:
            description = self._call("DescribeExecution", arn, executionArn=arn)
        history = self.history(arn)
        output = _json_object(description.get("output"))
        return ExecutionResult(
            execution_id=arn,
            order_id=order_id,
            status=str(description["status"]),
            dry_run=dry_run,
            started_at=_aware(description["startDate"]),
            finished_at=_aware(description["stopDate"]) if description.get("stopDate") else None,
            outcome=_outcome(output),
            output=output,
            error=description.get("error"),
            cause=description.get("cause"),
            steps=steps_from_history(history, order_id=order_id, dry_run=dry_run),
            history=history,
        )

    def history(self, arn: str) -> tuple[Mapping[str, Any], ...]:
        """Every event of execution ``arn``, oldest first (all pages)."""
        events: list[Mapping[str, Any]] = []
        token: str | None = None
        while True:
            page = self._call(
                "GetExecutionHistory",
                arn,
                executionArn=arn,
                maxResults=1000,
                **({"nextToken": token} if token else {}),
            )
            events.extend(page.get("events", ()))
            token = page.get("nextToken")
            if not token:
                return tuple(events)

    def _wait(self, arn: str, timeout_s: float) -> Mapping[str, Any]:
        deadline = self._clock() + timeout_s
        while True:
            description = self._call("DescribeExecution", arn, executionArn=arn)
            remaining = deadline - self._clock()
            if description.get("status") != "RUNNING" or remaining <= 0:
                return description
            self._sleeper(min(self._poll_interval_s, remaining))

    def _call(self, operation: str, target: str, **kwargs: Any) -> Mapping[str, Any]:
        method = getattr(self._sfn, _snake(operation))
        try:
            answer: Mapping[str, Any] = method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(operation, target, exc) from exc
        return answer


def _translate(operation: str, target: str, exc: ClientError | BotoCoreError) -> StepFunctionsError:
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        retryable = code in _RETRYABLE_CODES
    else:
        code, message, retryable = type(exc).__name__, str(exc), True
    return StepFunctionsError(
        operation=operation, target=target, code=code, message=message, retryable=retryable
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def _json_object(raw: Any) -> Mapping[str, Any] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _outcome(output: Mapping[str, Any] | None) -> str | None:
    outcome = output.get("outcome") if output else None
    return outcome if isinstance(outcome, str) else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _default_client(state_machine_arn: str) -> Any:
    config = Config(
        connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"}
    )
    region = state_machine_region(state_machine_arn)
    return boto3.client("stepfunctions", region_name=region, config=config)
