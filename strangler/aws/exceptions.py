"""Errors of deploying to AWS; botocore errors are translated into these at the boundary.

::

    StranglerError
     +-- AwsError
          +-- BundleError      the Lambda code bundle could not be built
          +-- DeployError      the stack could not be created or updated; carries the stack
          +-- RollbackError    the aliases could not be moved back; carries the stack
"""

from __future__ import annotations

from strangler.exceptions import StranglerError

__all__ = ["AwsError", "BundleError", "DeployError", "RollbackError"]


class AwsError(StranglerError):
    """Base for errors of ``strangler aws``."""


class BundleError(AwsError):
    """The Lambda code bundle could not be built (pip failed, metadata missing)."""


class DeployError(AwsError):
    """The stack could not be created or updated; ``stack`` names it."""

    def __init__(self, stack: str, problem: str) -> None:
        self.stack = stack
        self.problem = problem
        super().__init__(f"stack {stack}: {problem}")


class RollbackError(AwsError):
    """The aliases of ``stack`` could not be moved back; nothing moved unless it says so."""

    def __init__(self, stack: str, problem: str) -> None:
        self.stack = stack
        self.problem = problem
        super().__init__(f"stack {stack}: {problem}")
