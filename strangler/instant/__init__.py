"""The instant pipeline: one ASL definition, run in-process or on AWS Step Functions.

- :class:`LocalBackend` runs ``order_pipeline.asl.json`` on the local executor
  (:mod:`strangler.instant.asl`) with the handlers of :func:`make_handlers`.
- :class:`StepFunctionsBackend` runs the deployed state machine through its alias.
- :func:`instant_backend_from_settings` picks one from ``STRANGLER_INSTANT_BACKEND``.
- :func:`describe` and :func:`format_history` print an execution readably.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

# Eager: light, and `describe` is also a submodule's name, which a lazy lookup would return.
from strangler.instant.describe import describe, format_history

if TYPE_CHECKING:
    from strangler.instant.backends import instant_backend_from_settings
    from strangler.instant.definition import execution_name, load_definition
    from strangler.instant.dispatcher import NotificationDispatcher
    from strangler.instant.exceptions import (
        DefinitionError,
        DispatchError,
        ExecutionError,
        InstantError,
        InvalidStepEvent,
        StepFunctionsError,
    )
    from strangler.instant.handlers import make_handlers
    from strangler.instant.local_backend import LocalBackend
    from strangler.instant.results import ExecutionResult
    from strangler.instant.stepfunctions_backend import StepFunctionsBackend
    from strangler.instant.steps import steps_from_history

_LAZY = {
    "DefinitionError": "strangler.instant.exceptions",
    "DispatchError": "strangler.instant.exceptions",
    "ExecutionError": "strangler.instant.exceptions",
    "ExecutionResult": "strangler.instant.results",
    "InstantError": "strangler.instant.exceptions",
    "InvalidStepEvent": "strangler.instant.exceptions",
    "LocalBackend": "strangler.instant.local_backend",
    "NotificationDispatcher": "strangler.instant.dispatcher",
    "StepFunctionsBackend": "strangler.instant.stepfunctions_backend",
    "StepFunctionsError": "strangler.instant.exceptions",
    "execution_name": "strangler.instant.definition",
    "instant_backend_from_settings": "strangler.instant.backends",
    "load_definition": "strangler.instant.definition",
    "make_handlers": "strangler.instant.handlers",
    "steps_from_history": "strangler.instant.steps",
}

__all__ = [
    "DefinitionError",
    "DispatchError",
    "ExecutionError",
    "ExecutionResult",
    "InstantError",
    "InvalidStepEvent",
    "LocalBackend",
    "NotificationDispatcher",
    "StepFunctionsBackend",
    "StepFunctionsError",
    "describe",
    "execution_name",
    "format_history",
    "instant_backend_from_settings",
    "load_definition",
    "make_handlers",
    "steps_from_history",
]

__getattr__ = attribute_loader(__name__, _LAZY)
