"""Typed records of the legacy app's answers (see docs/legacy-api.yaml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = ["JobInfo", "JobRun", "LegacyOrder", "LegacyStepRecord", "ListedOrder", "StepOutcome"]

LEGACY_TERMINAL = frozenset({"fulfilled", "rejected_fraud", "payment_declined", "failed"})


@dataclass(frozen=True, slots=True)
class LegacyStepRecord:
    """One step the legacy app performed on an order, and who performed it.

    ``actor`` is ``batch`` (a scheduled job) or ``api`` (the per-order API, i.e. the
    instant path); ``step`` is ``fraud_scan``, ``authorize_payment`` or ``fulfill``;
    ``decision`` is ``pass``/``reject``, ``authorized``/``declined`` or ``fulfilled``,
    or None when the step errored (then ``error`` says why). ``reason`` explains a
    reject or decline (see docs/legacy.md).
    """

    step: str
    actor: str
    decision: str | None
    at: datetime
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LegacyOrder:
    """An order as the legacy app reports it.

    ``attempts`` counts failed attempts at the current stage; ``claimed_at`` and
    ``released_at`` are the last claim by the per-order API and the last hand-back.
    """

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
    city: str | None = None
    currency: str | None = None
    attempts: int = 0
    claimed_at: datetime | None = None
    released_at: datetime | None = None
    release_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the legacy app will not change the order's status again."""
        return self.status in LEGACY_TERMINAL

    def steps_by(self, actor: str) -> tuple[LegacyStepRecord, ...]:
        """The history records of one actor (``batch`` or ``api``), oldest first."""
        return tuple(record for record in self.history if record.actor == actor)

    def decision_of(self, step: str) -> str | None:
        """The decision the legacy app took for ``step``, whoever took it; None if not yet."""
        for record in self.history:
            if record.step == step and record.decision is not None:
                return record.decision
        return None


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """One order of a bulk listing: its id and update time, the rest read on demand.

    A listing shows every order the legacy app updated, most of which its reader skips
    (the follower records only the orders the ledger has open, the reconciler only those
    it lacks), so only ``order_id`` and ``updated_at`` are checked when the page arrives;
    :meth:`order` checks and builds the whole record (and raises LegacyProtocolError when
    the legacy app's JSON breaks the contract).
    """

    order_id: str
    updated_at: datetime
    load: Callable[[], LegacyOrder] = field(repr=False, compare=False)

    def order(self) -> LegacyOrder:
        """The whole order, as :class:`LegacyOrder` (built on each call)."""
        return self.load()


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """The answer of one per-order step (``fraud_scan``, ``authorize_payment``, ``fulfill``).

    ``decision`` is ``pass``/``reject``, ``authorized``/``declined`` or ``fulfilled``;
    ``order_status`` is the order's status after the call (unchanged by a dry run);
    ``details`` may hold ``reason`` (why a reject or decline) and ``vouchers``.
    ``replayed`` is True when the legacy app returned the step's first result again.
    """

    step: str
    decision: str
    order_status: str
    dry_run: bool
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    order_id: str | None = None
    replayed: bool = False

    @property
    def reason(self) -> str | None:
        """Why the step rejected or declined, if it did."""
        reason = self.details.get("reason")
        return reason if isinstance(reason, str) else None

    @property
    def vouchers(self) -> tuple[str, ...]:
        """The voucher codes a fulfilment issued (empty for other steps)."""
        return tuple(self.details.get("vouchers", ()))


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a batch job: how many orders it took up and what became of them.

    ``outcomes`` counts decisions (``pass``, ``reject``, ...); ``errors`` counts orders
    whose step failed and stays for the next run, ``failed`` those given up on.
    """

    run_id: int
    job: str
    trigger: str
    started_at: datetime
    finished_at: datetime
    selected: int
    processed: int
    skipped: int
    errors: int
    failed: int
    outcomes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A batch job's schedule and recent runs (newest first)."""

    name: str
    step: str
    from_status: str
    interval_s: float
    batch_size: int
    scheduled: bool
    next_run_at: datetime | None
    running: bool
    last_run: JobRun | None
    recent_runs: tuple[JobRun, ...] = ()
