"""The record a finished execution leaves, with Step Functions' field names and values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strangler.instant.asl.history import ExecutionHistory, dumps

__all__ = ["Execution"]


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a state machine, run to its end.

    ``status`` is ``SUCCEEDED``, ``FAILED`` or ``TIMED_OUT``. ``output`` is the decoded
    output (None unless SUCCEEDED); ``error`` and ``cause`` say why it failed (either may
    be None, as in Step Functions). ``history`` holds events shaped like
    GetExecutionHistory's ``events``, oldest first (a sequence equal to their tuple).
    """

    name: str
    execution_arn: str
    state_machine_arn: str
    status: str
    input: Any
    output: Any
    error: str | None
    cause: str | None
    start_date: datetime
    stop_date: datetime
    history: ExecutionHistory

    @property
    def succeeded(self) -> bool:
        """True when the execution ended with status SUCCEEDED."""
        return self.status == "SUCCEEDED"

    def describe(self) -> dict[str, Any]:
        """The execution as DescribeExecution returns it (input and output as JSON text)."""
        described: dict[str, Any] = {
            "executionArn": self.execution_arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.start_date,
            "stopDate": self.stop_date,
            "input": dumps(self.input),
            "inputDetails": {"included": True},
            "redriveCount": 0,
        }
        if self.status == "SUCCEEDED":
            described["output"] = dumps(self.output)
            described["outputDetails"] = {"included": True}
        if self.error is not None:
            described["error"] = self.error
        if self.cause is not None:
            described["cause"] = self.cause
        return described
