"""The ``context`` argument a handler receives, shaped like AWS Lambda's Python context."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["LambdaContext"]


@dataclass(slots=True)  # a plain object, as AWS's is (and frozen costs µs per call)
class LambdaContext:
    """What a Lambda handler can read about its invocation.

    ``deadline`` is a :func:`time.monotonic` reading: the Task's ``TimeoutSeconds`` from
    the start of the call, or the Lambda maximum (900 s) when the Task sets none.
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 900.0)
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's deadline (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))
