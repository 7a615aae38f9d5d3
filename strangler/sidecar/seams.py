"""What the sidecar needs from the rest of strangler, as small Protocols.

The real parts are strangler.routing.runtime.Runtime and strangler.rollout.controller's controller
(whose Protocol, RolloutController, is re-exported here); unit tests put hand-written
fakes here instead.
"""

from __future__ import annotations

from typing import Any, Protocol

from strangler.ledger.records import LedgerCounts, RolloutEventFields
from strangler.orders import OrderNotification
from strangler.protocols import FlagSource
from strangler.rollout.controller import RolloutController

__all__ = [
    "IntakeOutcome",
    "IntakeRouter",
    "RolloutController",
    "SidecarLedger",
    "SidecarRuntime",
]


class IntakeOutcome(Protocol):
    """What the router says about one intake."""

    @property
    def new(self) -> bool: ...

    @property
    def order_id(self) -> str: ...


class IntakeRouter(Protocol):
    """Takes an order in: durable row first, duplicates change nothing."""

    def intake(self, order: OrderNotification, *, source: str) -> IntakeOutcome: ...


class SidecarLedger(Protocol):
    """The part of the ledger (SqlLedger) the sidecar reads and writes."""

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None: ...

    def story(self, order_id: str) -> dict[str, Any] | None: ...

    def backlog(self) -> int: ...

    def counts(self) -> LedgerCounts: ...

    def probe(self) -> None:
        """Raise unless the ledger answers a read now (a read-only snapshot)."""
        ...

    def record_rollout_event(self, event: RolloutEventFields) -> bool: ...


class SidecarRuntime(Protocol):
    """The router, ledger and flag source of one process, and their background workers."""

    @property
    def router(self) -> IntakeRouter: ...

    @property
    def ledger(self) -> SidecarLedger: ...

    @property
    def flags(self) -> FlagSource: ...

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...
