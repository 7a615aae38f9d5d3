"""The router tests' fakes are the public ones in strangler.testing; plus their constants."""

from __future__ import annotations

from strangler.testing import (
    RUN_STARTED_AT,
    FakeFlags,
    FakeInstant,
    FakeLegacy,
    Script,
    execution_result,
    legacy_order,
)

__all__ = [
    "BATCH_FULFILLED",
    "T_RUN",
    "FakeFlags",
    "FakeInstant",
    "FakeLegacy",
    "Script",
    "execution",
    "legacy_order",
]

T_RUN = RUN_STARTED_AT
execution = execution_result

BATCH_FULFILLED = (
    ("fraud_scan", "batch", "pass"),
    ("authorize_payment", "batch", "authorized"),
    ("fulfill", "batch", "fulfilled"),
)
