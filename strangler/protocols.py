"""The seams between the parts, as small Protocols, so tests can put a fake on one side.

- FlagSource: asks the flag which path an order takes (strangler.flags).
- LegacyPath: what the router needs from the legacy app (strangler.legacy_adapter).
- InstantBackend: runs the instant pipeline for one order (strangler.instant);
  ParkingBackend: one whose executions can wait without holding the caller's thread.

The ledger has no single Protocol: each consumer declares the part it uses
(strangler.routing.router.RouterLedger, strangler.routing.dispatcher.LeaseQueue,
strangler.background.follower.FollowerLedger, strangler.sidecar.seams.SidecarLedger), and
strangler.ledger.SqlLedger satisfies them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from strangler.instant.results import ExecutionResult
from strangler.legacy_adapter.models import LegacyOrder, ListedOrder
from strangler.orders import Decision, OrderNotification

__all__ = ["FlagSource", "FlagStatus", "InstantBackend", "LegacyPath", "ParkingBackend"]


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

    def orders_listed_since(
        self, since: datetime | None, *, limit: int = 500
    ) -> Sequence[ListedOrder]:
        """Orders updated at or after ``since`` (all when None), oldest update first, each
        built only when its ``order()`` is asked for."""
        ...


class InstantBackend(Protocol):
    """Runs the instant pipeline for one order, idempotently (one execution per order)."""

    def run(
        self, order: OrderNotification, *, dry_run: bool = False, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Start (or re-attach to) the order's execution and wait until it ends or times out."""
        ...


@runtime_checkable
class ParkingBackend(InstantBackend, Protocol):
    """An InstantBackend whose executions wait (Retry intervals) without holding a thread."""

    def begin(self, order: OrderNotification, *, dry_run: bool = False) -> Future[ExecutionResult]:
        """Start (or re-attach to) the order's execution on this thread until it ends or
        waits; the future settles at its end, from another thread if it waited."""
        ...
