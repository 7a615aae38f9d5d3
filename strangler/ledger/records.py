"""Records the ledger hands out (leased orders, counts, rollout events) and owner ids."""

from __future__ import annotations

import enum
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from strangler.orders import Decision, OrderNotification, OrderStatus

__all__ = [
    "DurationBuckets",
    "Handoff",
    "LeasedOrder",
    "LedgerCounts",
    "RolloutEvent",
    "RolloutEventFields",
    "default_owner",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def default_owner() -> str:
    """A lease owner id unique to one worker: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Handoff(enum.StrEnum):
    """Why an order routed to the instant path ended up with the batch jobs."""

    FALLBACK = "fallback"
    LEGACY_OWNED = "legacy_owned"


@dataclass(frozen=True, slots=True)
class LeasedOrder:
    """An order a dispatcher worker holds the lease on, as the ledger has it now.

    ``attempts`` counts this lease too (the first processing is attempt 1).
    ``notification`` carries no payment data (see docs/ledger.md). ``pinned_now``: the
    claim itself decided and pinned ``decision`` (see ``SqlLedger.claim_due``): on the
    instant path the order is ``running`` already, on the legacy path the lease was
    released with the pin.
    """

    order_id: str
    notification: OrderNotification
    status: OrderStatus
    decision: Decision | None
    handoff: Handoff | None
    attempts: int
    last_error: str | None
    lease_owner: str
    lease_expires_at: datetime
    pinned_now: bool = False

    def pinned_as(self, decision: Decision, status: OrderStatus) -> LeasedOrder:
        """This order with ``decision`` pinned now by its claim, at ``status``: what
        ``dataclasses.replace`` gives, at a third of its CPU (a claim pins each order)."""
        return LeasedOrder(
            order_id=self.order_id,
            notification=self.notification,
            status=status,
            decision=decision,
            handoff=self.handoff,
            attempts=self.attempts,
            last_error=self.last_error,
            lease_owner=self.lease_owner,
            lease_expires_at=self.lease_expires_at,
            pinned_now=True,
        )


@dataclass(frozen=True, slots=True)
class DurationBuckets:
    """Processing times of the terminal orders of one path and outcome, as a histogram.

    ``at_most[i]`` counts the orders that took at most the i-th bound asked for
    (cumulative, as Prometheus buckets are); ``total_s`` is the sum of their seconds.
    """

    path: str
    outcome: str
    count: int
    total_s: float
    at_most: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    """Order counts for metrics and the demo.

    ``by_path_status`` maps (path, status) to a count; orders not routed yet have path
    ``"undecided"``. ``handoffs`` maps each :class:`Handoff` value to a count.
    ``by_source`` counts orders by how they came in (``reconciled``: adopted from the
    legacy app after a missed intake); ``unknown_to_legacy`` is how many open orders the
    last reconciliation sweep found that the legacy app has never reported.
    ``instant_errors`` counts instant orders that fell back or ended failed, each order
    once: the numerator of the gate's error_rate check.
    """

    total: int
    backlog: int
    dispatch_queue: int
    rejected: int
    by_path_status: Mapping[tuple[str, str], int]
    handoffs: Mapping[str, int]
    by_source: Mapping[str, int] = field(default_factory=dict)
    unknown_to_legacy: int = 0
    instant_errors: int = 0


class RolloutEventFields(Protocol):
    """Anything that describes a rollout change, e.g. strangler.rollout.controller.RolloutChange."""

    @property
    def at(self) -> datetime: ...

    @property
    def actor(self) -> str: ...

    @property
    def from_rollout(self) -> int | None: ...

    @property
    def to_rollout(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def flag_revision(self) -> str: ...

    @property
    def kind(self) -> str | None: ...

    @property
    def enabled(self) -> bool | None: ...

    @property
    def instant_weight(self) -> float | None: ...

    @property
    def shadow_weight(self) -> float | None: ...

    @property
    def stage(self) -> str | None: ...

    @property
    def changed(self) -> bool | None: ...

    @property
    def no_evidence(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """One audited rollout change: who changed what, from what, to what, and why.

    ``kind`` is set, kill, enable, variants, stage, gate_<decision>, or observed (a step
    the gate found missing from the timeline); ``enabled``, the weights (percent) and
    ``stage`` describe the flag after the change; ``changed`` is False for a record that
    changed nothing (a gate hold). These are None on events kept
    before schema v3, where the ledger did not record them.
    """

    at: datetime
    actor: str
    from_rollout: int | None
    to_rollout: int
    reason: str
    flag_revision: str
    kind: str | None = None
    enabled: bool | None = None
    instant_weight: float | None = None
    shadow_weight: float | None = None
    stage: str | None = None
    changed: bool | None = None
    no_evidence: bool = False
