"""strangler: route orders between a legacy batch system and an instant pipeline."""

from strangler.exceptions import (
    ConfigurationError,
    FlagError,
    FlagFileError,
    InvalidNotification,
    LedgerError,
    RolloutError,
    StranglerError,
)
from strangler.orders import Decision, OrderNotification, OrderStatus, Outcome, Path, StepResult
from strangler.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Decision",
    "FlagError",
    "FlagFileError",
    "InvalidNotification",
    "LedgerError",
    "OrderNotification",
    "OrderStatus",
    "Outcome",
    "Path",
    "RolloutError",
    "Settings",
    "StepResult",
    "StranglerError",
    "__version__",
]
