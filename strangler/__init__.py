"""strangler: route orders between a legacy batch system and an instant pipeline.

The light records and errors are imported eagerly. The parts that pull in Flask,
SQLAlchemy, boto3 or the Unleash SDK are loaded on first use (PEP 562), so that a
Lambda handler importing ``strangler.instant.handlers`` stays small and fast to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from strangler._moved import install as _answer_moved_module_names
from strangler.exceptions import (
    ConfigurationError,
    FlagError,
    FlagFileError,
    InvalidNotification,
    LedgerError,
    RolloutError,
    StranglerError,
    UnleashAdminError,
)
from strangler.orders import Decision, OrderNotification, OrderStatus, Outcome, Route, StepResult
from strangler.settings import Settings

if TYPE_CHECKING:
    from strangler.flags import EmbeddedFlagSource, UnleashFlagSource, flag_source_from_settings
    from strangler.instant import LocalBackend, StepFunctionsBackend
    from strangler.instant.asl import StateMachine
    from strangler.ledger import SqlLedger, ledger_from_url
    from strangler.ledger.report_queries import load_report
    from strangler.legacy_adapter import LegacyClient
    from strangler.report.report import Report
    from strangler.report.verdict import Thresholds, Verdict
    from strangler.rollout.controller import rollout_controller_from_settings
    from strangler.routing.router import Router
    from strangler.routing.runtime import Runtime
    from strangler.sidecar.app import create_app

__version__ = "0.1.0"

_answer_moved_module_names()

_LAZY = {
    "EmbeddedFlagSource": "strangler.flags",
    "LegacyClient": "strangler.legacy_adapter",
    "LocalBackend": "strangler.instant",
    "Report": "strangler.report.report",
    "Router": "strangler.routing.router",
    "Runtime": "strangler.routing.runtime",
    "SqlLedger": "strangler.ledger",
    "StateMachine": "strangler.instant.asl",
    "StepFunctionsBackend": "strangler.instant",
    "Thresholds": "strangler.report.verdict",
    "UnleashFlagSource": "strangler.flags",
    "Verdict": "strangler.report.verdict",
    "create_app": "strangler.sidecar.app",
    "flag_source_from_settings": "strangler.flags",
    "ledger_from_url": "strangler.ledger",
    "load_report": "strangler.ledger.report_queries",
    "rollout_controller_from_settings": "strangler.rollout.controller",
}

__all__ = [
    "ConfigurationError",
    "Decision",
    "EmbeddedFlagSource",
    "FlagError",
    "FlagFileError",
    "InvalidNotification",
    "LedgerError",
    "LegacyClient",
    "LocalBackend",
    "OrderNotification",
    "OrderStatus",
    "Outcome",
    "Report",
    "RolloutError",
    "Route",
    "Router",
    "Runtime",
    "Settings",
    "SqlLedger",
    "StateMachine",
    "StepFunctionsBackend",
    "StepResult",
    "StranglerError",
    "Thresholds",
    "UnleashAdminError",
    "UnleashFlagSource",
    "Verdict",
    "__version__",
    "create_app",
    "flag_source_from_settings",
    "ledger_from_url",
    "load_report",
    "rollout_controller_from_settings",
]


def __getattr__(name: str) -> Any:
    if name == "Path":
        from strangler import orders  # noqa: PLC0415  (the deprecated alias warns there)

        return orders.Path
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strangler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
