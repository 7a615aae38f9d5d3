"""Errors of the instant pipeline (drawn in :mod:`strangler.exceptions`).

A failing *execution* is not an exception: the executor reports it in
:class:`~strangler.instant.asl.Execution` (``status``, ``error``, ``cause``), as Step
Functions does. These exceptions are for callers' mistakes and broken machinery.
"""

from __future__ import annotations

from strangler.exceptions import StranglerError

__all__ = ["DefinitionError", "ExecutionError", "InstantError"]


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
