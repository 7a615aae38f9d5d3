"""Errors of the instant pipeline (drawn in :mod:`strangler.exceptions`).

A failing *execution* is not an exception: the executor reports it in
:class:`~strangler.instant.asl.Execution` (``status``, ``error``, ``cause``), as Step
Functions does. These exceptions are for callers' mistakes and broken machinery.
"""

from __future__ import annotations

from strangler.exceptions import StranglerError

__all__ = [
    "DefinitionError",
    "DispatchError",
    "ExecutionError",
    "InstantError",
    "InvalidStepEvent",
    "StepFunctionsError",
]


class InstantError(StranglerError):
    """Base for errors of the instant pipeline."""


class DefinitionError(InstantError, ValueError):
    """An Amazon States Language definition is invalid; nothing was run.

    ``state`` names the offending state (None for a top-level field), ``field`` the
    offending field as a path inside it (``"Retry[0].ErrorEquals"``) and ``problem``
    says what is wrong and how to fix it.
    """

    def __init__(self, problem: str, *, state: str | None = None, field: str | None = None):
        self.state = state
        self.field = field
        self.problem = problem
        where = f"state {state!r}" if state is not None else "definition"
        if field is not None:
            where = f"{where}: field {field!r}"
        super().__init__(f"{where}: {problem}")


class ExecutionError(InstantError):
    """An execution could not be started or read (bad input or name, broken backend)."""


class StepFunctionsError(ExecutionError):
    """AWS Step Functions refused or could not be reached; botocore's error is ``__cause__``.

    ``operation`` is the API call (``StartExecution``...), ``target`` the execution it was
    about, ``code`` AWS's error code (or the botocore exception's name when there was no
    answer), and ``retryable`` whether trying again later may help (throttling, outage).
    """

    def __init__(
        self, *, operation: str, target: str, code: str, message: str, retryable: bool
    ) -> None:
        self.operation = operation
        self.target = target
        self.code = code
        self.retryable = retryable
        super().__init__(f"Step Functions {operation} for {target} failed: {code}: {message}")


class InvalidStepEvent(InstantError, ValueError):
    """A pipeline handler got an event it cannot use; ``field`` names the bad part.

    The pipeline does not retry it (the same event fails the same way): its Catch hands
    the order back to the batch jobs.
    """

    def __init__(self, step: str, field: str, problem: str) -> None:
        self.step = step
        self.field = field
        self.problem = problem
        super().__init__(f"{step} handler: {field} {problem}")


class DispatchError(InstantError):
    """Some records of an SNS event were not valid order notifications.

    ``failures`` maps each bad record's SNS MessageId to why. The valid records were
    started before this was raised; raising makes Lambda retry the event and then
    dead-letter it, so no notification is dropped silently.
    """

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        listed = "; ".join(f"{key}: {why}" for key, why in sorted(self.failures.items()))
        super().__init__(f"{len(self.failures)} SNS record(s) not dispatched: {listed}")
