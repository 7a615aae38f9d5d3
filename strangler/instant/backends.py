"""Choose the instant backend from Settings: in-process (``local``) or ``stepfunctions``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler.exceptions import ConfigurationError
from strangler.instant.handlers import LegacySteps
from strangler.instant.local_backend import LocalBackend
from strangler.instant.stepfunctions_backend import StepFunctionsBackend
from strangler.settings import Settings

if TYPE_CHECKING:  # strangler.protocols imports strangler.instant: avoid the cycle at run time
    from strangler.protocols import InstantBackend

__all__ = ["instant_backend_from_settings"]


def instant_backend_from_settings(settings: Settings, legacy: LegacySteps) -> InstantBackend:
    """The backend ``STRANGLER_INSTANT_BACKEND`` names.

    ``local`` runs the pipeline in this process against ``legacy`` with
    ``STRANGLER_WORKERS`` executions at a time; ``stepfunctions`` runs it on AWS through
    ``STRANGLER_STATE_MACHINE_ARN`` (the alias ARN), where the Lambdas bring their own
    legacy client. Raises ConfigurationError when that ARN is missing or malformed.
    """
    if settings.instant_backend == "local":
        return LocalBackend(legacy, max_workers=settings.workers)
    if not settings.state_machine_arn:
        raise ConfigurationError(
            "STRANGLER_STATE_MACHINE_ARN must be set when STRANGLER_INSTANT_BACKEND is "
            "stepfunctions: use the StateMachineAliasArn output of `strangler aws deploy`"
        )
    try:
        return StepFunctionsBackend(settings.state_machine_arn)
    except ValueError as exc:
        raise ConfigurationError(f"STRANGLER_STATE_MACHINE_ARN: {exc}") from exc
