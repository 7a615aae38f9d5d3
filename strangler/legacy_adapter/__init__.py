"""The adapter for the legacy Rails app: the only code that talks to it.

``LegacyClient`` speaks the contract in docs/legacy-api.yaml; its answers are the typed
records of ``models`` and its errors the tree in ``exceptions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

if TYPE_CHECKING:
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
        ListedOrder,
        StepOutcome,
    )

_LAZY = {
    "BreakerState": "strangler.legacy_adapter.breaker",
    "CircuitBreaker": "strangler.legacy_adapter.breaker",
    "CircuitOpen": "strangler.legacy_adapter.exceptions",
    "ClaimConflict": "strangler.legacy_adapter.exceptions",
    "JOB_NAMES": "strangler.legacy_adapter.client",
    "JobInfo": "strangler.legacy_adapter.models",
    "JobRun": "strangler.legacy_adapter.models",
    "LegacyClient": "strangler.legacy_adapter.client",
    "LegacyError": "strangler.legacy_adapter.exceptions",
    "LegacyOrder": "strangler.legacy_adapter.models",
    "LegacyProtocolError": "strangler.legacy_adapter.exceptions",
    "LegacyRejected": "strangler.legacy_adapter.exceptions",
    "LegacyStepRecord": "strangler.legacy_adapter.models",
    "LegacyUnavailable": "strangler.legacy_adapter.exceptions",
    "ListedOrder": "strangler.legacy_adapter.models",
    "OrderNotFound": "strangler.legacy_adapter.exceptions",
    "StepOutcome": "strangler.legacy_adapter.models",
    "WaitTimeout": "strangler.legacy_adapter.exceptions",
}

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
    "ListedOrder",
    "OrderNotFound",
    "StepOutcome",
    "WaitTimeout",
]

__getattr__ = attribute_loader(__name__, _LAZY)
