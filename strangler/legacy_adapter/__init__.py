"""The adapter for the legacy Rails app: the only code that talks to it.

``LegacyClient`` speaks the contract in docs/legacy-api.yaml; its answers are the typed
records of ``models`` and its errors the tree in ``exceptions``.
"""

from strangler.legacy_adapter.breaker import BreakerState, CircuitBreaker
from strangler.legacy_adapter.client import JOB_NAMES, LegacyClient
from strangler.legacy_adapter.exceptions import (
    CircuitOpen,
    ClaimConflict,
    LegacyError,
    LegacyProtocolError,
    LegacyRejected,
    LegacyUnavailable,
    OrderNotFound,
    WaitTimeout,
)
from strangler.legacy_adapter.models import (
    JobInfo,
    JobRun,
    LegacyOrder,
    LegacyStepRecord,
    StepOutcome,
)

__all__ = [
    "JOB_NAMES",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ClaimConflict",
    "JobInfo",
    "JobRun",
    "LegacyClient",
    "LegacyError",
    "LegacyOrder",
    "LegacyProtocolError",
    "LegacyRejected",
    "LegacyStepRecord",
    "LegacyUnavailable",
    "OrderNotFound",
    "StepOutcome",
    "WaitTimeout",
]
