"""Builds execution histories shaped like GetExecutionHistory's, for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)

_DETAILS = {
    "ExecutionStarted": "executionStartedEventDetails",
    "ExecutionSucceeded": "executionSucceededEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "TaskStateEntered": "stateEnteredEventDetails",
    "PassStateEntered": "stateEnteredEventDetails",
    "ChoiceStateEntered": "stateEnteredEventDetails",
    "SucceedStateEntered": "stateEnteredEventDetails",
    "TaskStateExited": "stateExitedEventDetails",
    "PassStateExited": "stateExitedEventDetails",
    "LambdaFunctionScheduled": "lambdaFunctionScheduledEventDetails",
    "LambdaFunctionStarted": None,
    "LambdaFunctionSucceeded": "lambdaFunctionSucceededEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "TaskScheduled": "taskScheduledEventDetails",
    "TaskSucceeded": "taskSucceededEventDetails",
    "TaskFailed": "taskFailedEventDetails",
}


class History:
    """Appends events 1 ms apart; ``events`` is the history."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, **details: Any) -> History:
        event: dict[str, Any] = {
            "id": len(self.events) + 1,
            "previousEventId": len(self.events),
            "timestamp": START + timedelta(milliseconds=len(self.events)),
            "type": kind,
        }
        key = _DETAILS[kind]
        if key is not None:
            event[key] = details
        self.events.append(event)
        return self

    def started(self, order_id: str = "o-1") -> History:
        return self.add("ExecutionStarted", input=json.dumps({"order_id": order_id}))

    def task(
        self,
        state: str,
        output: dict[str, Any] | None,
        *,
        failures: tuple[tuple[str, str], ...] = (),
        exit_on_failure: bool = False,
    ) -> History:
        """A Task state: failed attempts first, then success (or nothing when None)."""
        self.add("TaskStateEntered", name=state, input="{}")
        for error, cause in failures:
            self.add("LambdaFunctionScheduled", resource="arn:aws:lambda:x", input="{}")
            self.add("LambdaFunctionStarted")
            self.add("LambdaFunctionFailed", error=error, cause=cause)
        if output is not None:
            self.add("LambdaFunctionScheduled", resource="arn:aws:lambda:x", input="{}")
            self.add("LambdaFunctionStarted")
            self.add("LambdaFunctionSucceeded", output=json.dumps(output))
        if output is not None or exit_on_failure:
            self.add("TaskStateExited", name=state, output="{}")
        return self

    def passed(self, state: str) -> History:
        return self.add("PassStateEntered", name=state, input="{}").add(
            "PassStateExited", name=state, output="{}"
        )

    def succeeded(self, output: dict[str, Any]) -> History:
        return self.add("ExecutionSucceeded", output=json.dumps(output))
