"""The seams between the parts, as small Protocols, so tests can put a fake on one side.

- FlagSource: asks the flag which path an order takes (strangler.flags).
- LegacyPath: what the router needs from the legacy app (strangler.legacy_adapter).
- InstantBackend: runs the instant pipeline for one order (strangler.instant).
- Ledger: the durable record of every order (strangler.ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from strangler.instant.results import ExecutionResult
from strangler.legacy_adapter.models import LegacyOrder
from strangler.orders import Decision, OrderNotification, OrderStatus, StepResult

__all__ = ["FlagSource", "FlagStatus", "InstantBackend", "Ledger", "LegacyPath"]


@dataclass(frozen=True, slots=True)
class FlagStatus:
    """Health of a flag source, for readiness and metrics."""

    loaded: bool
    mode: str
    revision: str
    loaded_at: datetime | None
    last_error: str | None = None


class FlagSource(Protocol):
    """Decides the path of each order; never raises (falls back to legacy with a reason)."""

    def decide(self, order: OrderNotification) -> Decision: ...

    def status(self) -> FlagStatus: ...


class LegacyPath(Protocol):
    """The legacy app as the router sees it. Errors are strangler.legacy_adapter's."""

    def claim(self, order_id: str) -> bool:
        """Take the order away from the batch jobs; False when it is already taken or done."""
        ...

    def release(self, order_id: str, reason: str) -> None:
        """Hand a claimed order back to the batch jobs (idempotent)."""
        ...

    def get_order(self, order_id: str) -> LegacyOrder: ...

    def orders_updated_since(
        self, since: datetime | None, *, limit: int = 500
    ) -> Sequence[LegacyOrder]: ...


class InstantBackend(Protocol):
    """Runs the instant pipeline for one order, idempotently (one execution per order)."""

    def run(
        self, order: OrderNotification, *, dry_run: bool = False, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Start (or re-attach to) the order's execution and wait until it ends or times out."""
        ...


class Ledger(Protocol):
    """Durable record of every order; every write is idempotent."""

    def record_received(self, order: OrderNotification, *, source: str) -> bool:
        """Write the order if new; True when new, False for a duplicate (nothing changes)."""
        ...

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None: ...

    def pin_decision(self, order_id: str, decision: Decision) -> Decision:
        """Store the decision unless one is pinned already; returns the pinned one."""
        ...

    def transition(
        self,
        order_id: str,
        status: OrderStatus,
        *,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move the order forward to ``status``; False when it was there or beyond."""
        ...

    def record_step(self, step: StepResult, *, seq: int = 0) -> bool:
        """Record a step once per (order, path, step, dry_run, seq); True when new."""
        ...

    def story(self, order_id: str) -> dict[str, Any] | None:
        """The JSON story of one order (see DESIGN.md), or None when unknown."""
        ...

    def backlog(self) -> int:
        """How many orders are not yet terminal."""
        ...

    def ping(self) -> None:
        """Check the ledger can be written now; raises LedgerError when not."""
        ...
