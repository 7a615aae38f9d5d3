"""Step Functions error names, failures flowing through an execution, and Retry.

Two exceptions travel inside the executor and never leave it:

- :class:`EvaluationError` is raised by path, template and intrinsic evaluation with the
  detail of what went wrong; the executor prefixes it with the state and the event id
  it was entered at, the way Step Functions words its causes.
- :class:`StatesFailure` is a failure with an ASL error name and cause, as a Task, a
  Fail state or a branch reports it. ``terminal`` failures (``States.Runtime`` and the
  other data-processing errors) are never retried or caught, as in Step Functions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "ALL",
    "BRANCH_FAILED",
    "DATA_LIMIT_EXCEEDED",
    "HEARTBEAT_TIMEOUT",
    "INTRINSIC_FAILURE",
    "KNOWN_STATES_ERRORS",
    "NO_CHOICE_MATCHED",
    "PARAMETER_PATH_FAILURE",
    "PERMISSIONS",
    "RESULT_PATH_MATCH_FAILURE",
    "RUNTIME",
    "TASK_FAILED",
    "TIMEOUT",
    "EvaluationError",
    "ExecutionTimedOut",
    "PathNotFound",
    "Retrier",
    "StatesFailure",
    "error_matches",
    "next_retry_delay",
]

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"

# Every "States." name the language defines; ErrorEquals may not invent others.
KNOWN_STATES_ERRORS = frozenset(
    {
        ALL,
        TASK_FAILED,
        TIMEOUT,
        HEARTBEAT_TIMEOUT,
        RUNTIME,
        PERMISSIONS,
        RESULT_PATH_MATCH_FAILURE,
        PARAMETER_PATH_FAILURE,
        BRANCH_FAILED,
        NO_CHOICE_MATCHED,
        INTRINSIC_FAILURE,
        DATA_LIMIT_EXCEEDED,
        "States.ExceedToleratedFailureThreshold",
        "States.ItemReaderFailed",
        "States.ResultWriterFailed",
        "States.QueryEvaluationError",
    }
)


class EvaluationError(Exception):
    """Evaluating a path, payload template or intrinsic function failed."""

    def __init__(self, error: str, detail: str) -> None:
        self.error = error
        self.detail = detail
        super().__init__(f"{error}: {detail}")


class PathNotFound(EvaluationError):
    """A definite JSONPath matched nothing; ``detail`` is worded like Jayway JsonPath's."""

    def __init__(self, detail: str) -> None:
        super().__init__(RUNTIME, detail)


class StatesFailure(Exception):
    """A state failed with an ASL error name (None for a Fail state without Error)."""

    def __init__(self, error: str | None, cause: str | None, *, terminal: bool = False):
        self.error = error
        self.cause = cause
        self.terminal = terminal
        super().__init__(f"{error}: {cause}")

    def output(self) -> dict[str, str]:
        """The error output a Catch hands on: ``{"Error": ..., "Cause": ...}``."""
        out: dict[str, str] = {}
        if self.error is not None:
            out["Error"] = self.error
        if self.cause is not None:
            out["Cause"] = self.cause
        return out


class ExecutionTimedOut(Exception):
    """The execution's own TimeoutSeconds ran out; it ends as TIMED_OUT."""


def error_matches(error_equals: tuple[str, ...], failure: StatesFailure) -> bool:
    """Whether a retrier's or catcher's ErrorEquals covers the failure."""
    if failure.terminal:
        return False
    name = failure.error
    for pattern in error_equals:
        if pattern in (ALL, name):
            return True
        if pattern == TASK_FAILED and name != TIMEOUT:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Retrier:
    """One element of a state's Retry array, with the language's defaults applied."""

    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    full_jitter: bool = False

    def delay(self, retries_done: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retries_done + 1`` of this retrier."""
        delay = self.interval_seconds * self.backoff_rate**retries_done
        if self.max_delay_seconds is not None:
            delay = min(delay, self.max_delay_seconds)
        if self.full_jitter:
            delay = rng.random() * delay
        return delay


def next_retry_delay(
    retriers: tuple[Retrier, ...], counts: list[int], failure: StatesFailure, rng: random.Random
) -> float | None:
    """The wait before retrying, or None when no retrier applies or the first match is spent.

    As in Step Functions the first retrier whose ErrorEquals matches decides, even when
    it has no attempts left; ``counts`` holds each retrier's retries so far and is updated.
    """
    for index, retrier in enumerate(retriers):
        if not error_matches(retrier.error_equals, failure):
            continue
        done = counts[index]
        if done >= retrier.max_attempts:
            return None
        counts[index] = done + 1
        return retrier.delay(done, rng)
    return None
