"""The simulator's order record, its statuses and the three steps, with their JSON form.

Timestamps are kept as text in one canonical form (UTC, microseconds, ``Z``), so that
they sort as strings in SQLite and go out on the wire unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from strangler.sim.rules import OrderFacts

__all__ = [
    "JOBS",
    "MODES",
    "STATUSES",
    "STEPS",
    "TERMINAL",
    "SimOrder",
    "Step",
    "format_ts",
    "parse_ts",
]

STATUSES = (
    "pending",
    "fraud_checked",
    "authorized",
    "fulfilled",
    "rejected_fraud",
    "payment_declined",
    "failed",
)
TERMINAL = frozenset({"fulfilled", "rejected_fraud", "payment_declined", "failed"})
MODES = ("batch", "instant")


@dataclass(frozen=True, slots=True)
class Step:
    """One processing step: the status it takes orders from and where they go."""

    name: str
    job: str
    from_status: str
    pass_status: str
    stop_status: str | None
    stamp_field: str


STEPS: Mapping[str, Step] = MappingProxyType(
    {
        step.name: step
        for step in (
            Step(
                "fraud_scan",
                "fraud_scan",
                "pending",
                "fraud_checked",
                "rejected_fraud",
                "fraud_checked_at",
            ),
            Step(
                "authorize_payment",
                "payment_authorization",
                "fraud_checked",
                "authorized",
                "payment_declined",
                "authorized_at",
            ),
            Step("fulfill", "fulfillment", "authorized", "fulfilled", None, "fulfilled_at"),
        )
    }
)
JOBS: Mapping[str, Step] = MappingProxyType({step.job: step for step in STEPS.values()})


def format_ts(moment: datetime) -> str:
    """The canonical text of a timestamp: ``2025-01-31T12:00:00.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp that carries an offset; raises ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


@dataclass(frozen=True, slots=True)
class SimOrder:
    """One order as the legacy app stores it (``payment_token`` included, kept out of repr)."""

    order_id: str
    user_guid: str
    unit_id: str
    city: str | None
    amount_cents: int | None
    currency: str | None
    quantity: int | None
    payment_token: str | None = field(repr=False)
    status: str
    processing_mode: str
    created_at: str
    updated_at: str
    fraud_checked_at: str | None = None
    authorized_at: str | None = None
    fulfilled_at: str | None = None
    terminal_at: str | None = None
    claimed_at: str | None = None
    released_at: str | None = None
    release_reason: str | None = None
    claim_key: str | None = None
    batch_touched: bool = False
    attempts: int = 0
    last_error: str | None = None
    vouchers: tuple[str, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    step_results: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def is_terminal(self) -> bool:
        """True once no step will change the status again."""
        return self.status in TERMINAL

    def facts(self) -> OrderFacts:
        """What the business rules look at."""
        return OrderFacts(
            order_id=self.order_id,
            user_guid=self.user_guid,
            amount_cents=self.amount_cents,
            quantity=self.quantity,
            payment_token=self.payment_token,
        )

    def replace(self, **changes: Any) -> SimOrder:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The Order object of docs/legacy-api.yaml; the payment token only masked."""
        return {
            "order_id": self.order_id,
            "user_guid": self.user_guid,
            "unit_id": self.unit_id,
            "city": self.city,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "quantity": self.quantity,
            "payment_token_masked": mask_token(self.payment_token),
            "status": self.status,
            "processing_mode": self.processing_mode,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "fraud_checked_at": self.fraud_checked_at,
            "authorized_at": self.authorized_at,
            "fulfilled_at": self.fulfilled_at,
            "terminal_at": self.terminal_at,
            "claimed_at": self.claimed_at,
            "released_at": self.released_at,
            "release_reason": self.release_reason,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "vouchers": list(self.vouchers),
            "history": [dict(record) for record in self.history],
        }


def mask_token(token: str | None) -> str | None:
    """``****`` and the last four characters (only ``****`` for short tokens)."""
    if token is None:
        return None
    return "****" + (token[-4:] if len(token) >= 12 else "")
