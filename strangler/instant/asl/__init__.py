"""A faithful in-process executor of Amazon States Language, with Python Task handlers.

    from strangler.instant.asl import StateMachine

    machine = StateMachine(definition, {"my-function": handler})
    execution = machine.execute({"order_id": "o-1"})
    execution.status, execution.output, execution.history

What is supported and where it differs from AWS Step Functions: docs/asl-executor.md.
"""

from strangler.instant.asl.execution import Execution
from strangler.instant.asl.lambda_context import LambdaContext
from strangler.instant.asl.machine import StateMachine
from strangler.instant.asl.tasks import Handler
from strangler.instant.exceptions import DefinitionError, ExecutionError, InstantError

__all__ = [
    "DefinitionError",
    "Execution",
    "ExecutionError",
    "Handler",
    "InstantError",
    "LambdaContext",
    "StateMachine",
]
