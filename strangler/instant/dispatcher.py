"""The dispatcher Lambda: one Step Functions execution per order notification from SNS.

SNS invokes the dispatcher asynchronously with ``Records[].Sns.Message`` holding an order
notification (JSON). Each message is validated, and the order's execution is started
under a name derived from its order_id, so a notification delivered twice (SNS delivers
at least once) starts one execution: the second start finds the first and counts as
done.

Invalid messages are not dropped. The valid records of the event are started first,
then :class:`~strangler.instant.exceptions.DispatchError` is raised naming every bad
message. Lambda retries a failed asynchronous invocation twice (the valid records are
no-ops the second time) and then sends the event to the dispatcher's dead-letter queue,
where the template keeps it for 14 days for a person to look at. A Step Functions
failure (throttling, outage) is raised the same way, so that the retries cover it too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import boto3
import structlog
from botocore.config import Config

from strangler.exceptions import ConfigurationError, InvalidNotification
from strangler.instant.definition import state_machine_region
from strangler.instant.exceptions import DispatchError
from strangler.instant.stepfunctions_backend import start_order_execution
from strangler.logs import configure_logging
from strangler.orders import OrderNotification
from strangler.settings import Settings

__all__ = ["NotificationDispatcher", "dispatch"]

log = structlog.get_logger()


class NotificationDispatcher:
    """Starts the order pipeline for every notification in an SNS event (idempotent)."""

    def __init__(self, state_machine_arn: str, sfn_client: Any) -> None:
        self.state_machine_arn = state_machine_arn
        self._sfn = sfn_client

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, list[str]]:
        """Handle one SNS event; returns the order ids ``started`` and ``existing``.

        Raises DispatchError after starting the valid records when any record is not an
        SNS notification holding a valid order notification.
        """
        request_id = getattr(context, "aws_request_id", None)
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise DispatchError({"event": "has no Records list; is this an SNS event?"})
        started: list[str] = []
        existing: list[str] = []
        failures: dict[str, str] = {}
        for index, record in enumerate(records):
            message_id, message = _sns_message(index, record)
            if message is None:
                failures[message_id] = "not an SNS notification record (no Sns.Message)"
                continue
            try:
                order = OrderNotification.from_json(message)
            except InvalidNotification as exc:
                failures[message_id] = str(exc)
                log.error(
                    "dispatch_invalid_notification",
                    message_id=message_id,
                    fields=exc.fields,
                    request_id=request_id,
                )
                continue
            execution = start_order_execution(self._sfn, self.state_machine_arn, order.order_id)
            (started if execution.started else existing).append(order.order_id)
        log.info(
            "dispatched",
            started=len(started),
            existing=len(existing),
            invalid=len(failures),
            request_id=request_id,
        )
        if failures:
            raise DispatchError(failures)
        return {"started": started, "existing": existing}


def _sns_message(index: int, record: Any) -> tuple[str, str | None]:
    sns = record.get("Sns") if isinstance(record, Mapping) else None
    if not isinstance(sns, Mapping):
        return f"record {index}", None
    message_id = str(sns.get("MessageId") or f"record {index}")
    message = sns.get("Message")
    return message_id, message if isinstance(message, str) else None


@functools.cache
def _lambda_dispatcher() -> NotificationDispatcher:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.logging_level)
    if not settings.state_machine_arn:
        raise ConfigurationError(
            "STRANGLER_STATE_MACHINE_ARN is not set; the dispatcher needs the state machine "
            "alias ARN (the template sets it)"
        )
    client = boto3.client(
        "stepfunctions",
        region_name=state_machine_region(settings.state_machine_arn),
        config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard"}),
    )
    return NotificationDispatcher(settings.state_machine_arn, client)


def dispatch(event: Mapping[str, Any], context: Any) -> dict[str, list[str]]:
    """Lambda entry point of the dispatcher (configured from ``STRANGLER_*`` variables)."""
    return _lambda_dispatcher()(event, context)
