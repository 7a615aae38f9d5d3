"""Typed records of the legacy app's answers (see docs/legacy-api.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["LegacyOrder", "LegacyStepRecord"]

LEGACY_TERMINAL = frozenset({"fulfilled", "rejected_fraud", "payment_declined", "failed"})


@dataclass(frozen=True, slots=True)
class LegacyStepRecord:
    """One step the legacy app performed on an order, and who performed it.

    ``actor`` is ``batch`` (a scheduled job) or ``api`` (the per-order API, i.e. the
    instant path); ``step`` is ``fraud_scan``, ``authorize_payment`` or ``fulfill``;
    ``decision`` is ``pass``/``reject``, ``authorized``/``declined`` or ``fulfilled``,
    or None when the step errored (then ``error`` says why).
    """

    step: str
    actor: str
    decision: str | None
    at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LegacyOrder:
    """An order as the legacy app reports it."""

    order_id: str
    status: str
    processing_mode: str
    user_guid: str
    unit_id: str
    created_at: datetime
    updated_at: datetime
    amount_cents: int | None = None
    quantity: int | None = None
    fraud_checked_at: datetime | None = None
    authorized_at: datetime | None = None
    fulfilled_at: datetime | None = None
    terminal_at: datetime | None = None
    vouchers: tuple[str, ...] = ()
    last_error: str | None = None
    history: tuple[LegacyStepRecord, ...] = ()

    @property
    def is_terminal(self) -> bool:
        """True once the legacy app will not change the order's status again."""
        return self.status in LEGACY_TERMINAL
