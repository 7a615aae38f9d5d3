"""A faithful in-process executor of Amazon States Language, with Python Task handlers.

    from strangler.instant.asl import StateMachine

    machine = StateMachine(definition, {"my-function": handler})
    execution = machine.execute({"order_id": "o-1"})
    execution.status, execution.output, execution.history

What is supported and where it differs from AWS Step Functions: docs/asl-executor.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

if TYPE_CHECKING:
    from strangler.instant.asl.execution import Execution
    from strangler.instant.asl.lambda_context import LambdaContext
    from strangler.instant.asl.machine import StateMachine
    from strangler.instant.asl.tasks import Handler
    from strangler.instant.exceptions import DefinitionError, ExecutionError, InstantError

_LAZY = {
    "DefinitionError": "strangler.instant.exceptions",
    "Execution": "strangler.instant.asl.execution",
    "ExecutionError": "strangler.instant.exceptions",
    "Handler": "strangler.instant.asl.tasks",
    "InstantError": "strangler.instant.exceptions",
    "LambdaContext": "strangler.instant.asl.lambda_context",
    "StateMachine": "strangler.instant.asl.machine",
}

__all__ = [
    "DefinitionError",
    "Execution",
    "ExecutionError",
    "Handler",
    "InstantError",
    "LambdaContext",
    "StateMachine",
]

__getattr__ = attribute_loader(__name__, _LAZY)
