"""Who gets the instant path: one audited controller, the Unleash admin client, the gate.

``strangler.rollout`` was one module until 0.1; its public names still load from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

if TYPE_CHECKING:
    from strangler.rollout.controller import (
        AuditLog,
        EvidenceCheck,
        FileRolloutController,
        RolloutChange,
        RolloutController,
        RolloutState,
        UnleashRolloutController,
        check_audit_text,
        parse_percentage,
        parse_variant_weights,
        rollout_controller_from_settings,
    )

__all__ = [
    "AuditLog",
    "EvidenceCheck",
    "FileRolloutController",
    "RolloutChange",
    "RolloutController",
    "RolloutState",
    "UnleashRolloutController",
    "check_audit_text",
    "parse_percentage",
    "parse_variant_weights",
    "rollout_controller_from_settings",
]

__getattr__ = attribute_loader(__name__, dict.fromkeys(__all__, "strangler.rollout.controller"))
