"""The record an instant-pipeline execution leaves, whichever backend ran it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strangler.orders import StepResult

__all__ = ["ExecutionResult"]


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """One execution of the order pipeline for one order.

    ``status`` uses Step Functions' names (``RUNNING``, ``SUCCEEDED``, ``FAILED``,
    ``TIMED_OUT``, ``ABORTED``). ``outcome`` is the pipeline's business result taken from
    its output: ``fulfilled``, ``rejected_fraud``, ``payment_declined`` or ``fell_back``
    (the order was released to the batch jobs), or None while running or when the
    execution failed outright. ``history`` holds events shaped like GetExecutionHistory's
    (a tuple, or the local executor's sequence that writes its JSON text when first read).
    """

    execution_id: str
    order_id: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    output: Mapping[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    steps: tuple[StepResult, ...] = ()
    history: Sequence[Mapping[str, Any]] = ()
