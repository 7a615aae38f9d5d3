"""Reconciliation with the legacy app: what one side has and the other lacks.

An order the upstream created but the ledger never took in (the sidecar died between
the upstream's answer and the ledger write, or the ledger refused it) is still run by
the batch jobs. A sweep reads the legacy app in bulk (``orders_listed_since`` from a
cursor of its own, never one call per order; only the orders the ledger lacks are built
from the answer) and adopts every order older than a grace period that the ledger lacks:
source ``reconciled``, path ``legacy`` with reason ``missed_intake``, the batch jobs'
steps and the legacy status (terminal or followed from then on). The same sweep reports
the ledger's open orders that the legacy app has never reported, older than a
configurable age: logged, kept in the ledger's kv
(:data:`strangler.ledger.sql_ledger.UNKNOWN_TO_LEGACY_KEY`) and shown in ``/metrics``.
The legacy follower runs the sweep in its loop, under its role.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from strangler.background.follower import legacy_steps
from strangler.background.role_loop import Cadence
from strangler.ledger import SqlLedger, utc_now
from strangler.ledger.ops_queries import HEARTBEAT_KEYS
from strangler.ledger.sql_ledger import UNKNOWN_TO_LEGACY_KEY
from strangler.legacy_adapter.models import LegacyOrder
from strangler.orders import Decision, OrderNotification, Route
from strangler.protocols import LegacyPath

__all__ = ["CURSOR_KEY", "MISSED_INTAKE", "RECONCILED_SOURCE", "Reconciler", "Sweep"]

CURSOR_KEY = "reconciler.cursor"
RECONCILED_SOURCE = "reconciled"
MISSED_INTAKE = "missed_intake"
MISSED_DECISION = Decision(
    path=Route.LEGACY, variant="disabled", rollout=0, flag_revision="none", reason=MISSED_INTAKE
)
_REPORTED_IDS = 100
_log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did: orders read from the legacy app, adopted, and found unknown."""

    read: int
    adopted: int
    unknown_to_legacy: int


class Reconciler:
    """Adopts orders the ledger missed; reports ledger orders the legacy app never had.

    ``grace_s``: an order created less than this long ago is left alone (its intake may
    still be on its way). ``unknown_age_s``: an open ledger order received longer ago than
    this, never reported by the legacy app, is reported. ``interval_s``: :meth:`maybe_sweep`
    sweeps at most this often.
    """

    def __init__(
        self,
        ledger: SqlLedger,
        legacy: LegacyPath,
        *,
        grace_s: float = 30.0,
        unknown_age_s: float = 3600.0,
        interval_s: float = 10.0,
        batch_limit: int = 500,
        max_pages: int = 20,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if grace_s < 0 or unknown_age_s <= 0 or interval_s <= 0:
            raise ValueError(
                "the reconciler needs grace_s >= 0, unknown_age_s > 0 and interval_s > 0, got "
                f"{grace_s}, {unknown_age_s} and {interval_s}"
            )
        self.ledger = ledger
        self.legacy = legacy
        self.grace = timedelta(seconds=grace_s)
        self.unknown_age = timedelta(seconds=unknown_age_s)
        self.interval_s = interval_s
        self.batch_limit = batch_limit
        self.max_pages = max_pages
        self._clock = clock
        self._sweeps = Cadence(interval_s, monotonic=monotonic)

    def maybe_sweep(self) -> Sweep | None:
        """Sweep when ``interval_s`` has passed since the last sweep (or never swept)."""
        return self.sweep() if self._sweeps.due() else None

    def sweep(self) -> Sweep:
        """Adopt what the ledger missed, then report what the legacy app never had.

        Raises LegacyError when the legacy app fails and LedgerError when the ledger does;
        what was adopted before stays adopted, and the cursor only moves past what is done.
        A sweep that succeeds is noted in the ledger (``HEARTBEAT_KEYS["reconciler"]``).
        """
        now = self._clock()
        read = adopted = 0
        for _ in range(self.max_pages):
            page, page_adopted, more = self._sweep_page(now)
            read += page
            adopted += page_adopted
            if not more:
                break
        unknown = self._report_unknown(now)
        self.ledger.set_value(HEARTBEAT_KEYS["reconciler"], self._clock().isoformat())
        if adopted:
            _log.info("reconciled_orders_adopted", adopted=adopted, reason=MISSED_INTAKE)
        return Sweep(read=read, adopted=adopted, unknown_to_legacy=unknown)

    def _sweep_page(self, now: datetime) -> tuple[int, int, bool]:
        stored = self.ledger.get_value(CURSOR_KEY)
        cursor = datetime.fromisoformat(stored) if stored else None
        listed = self.legacy.orders_listed_since(cursor, limit=self.batch_limit)
        known = self.ledger.known_orders([entry.order_id for entry in listed])
        too_young = now - self.grace
        hold: datetime | None = None
        adopted = 0
        for entry in listed:
            if entry.order_id in known:
                continue  # never built: the ledger has it
            order = entry.order()
            if order.created_at > too_young:
                # Read again next time: its intake may still come, or it is adopted then.
                hold = order.updated_at if hold is None else min(hold, order.updated_at)
                continue
            adopted += self._adopt(order)
        newest = max((entry.updated_at for entry in listed), default=cursor)
        moved_to = hold if hold is not None else newest
        if moved_to is not None and moved_to != cursor:
            self.ledger.set_value(CURSOR_KEY, moved_to.isoformat())
        more = hold is None and len(listed) >= self.batch_limit and newest != cursor
        return len(listed), adopted, more

    def _adopt(self, order: LegacyOrder) -> int:
        adopted = self.ledger.adopt(
            _notification(order),
            MISSED_DECISION,
            legacy_steps(order),
            source=RECONCILED_SOURCE,
            legacy_status=order.status,
            legacy_terminal_at=(order.terminal_at or order.updated_at)
            if order.is_terminal
            else None,
        )
        if adopted:
            _log.warning(
                "order_adopted",
                order_id=order.order_id,
                reason=MISSED_INTAKE,
                legacy_status=order.status,
            )
        return int(adopted)

    def _report_unknown(self, now: datetime) -> int:
        count, order_ids = self.ledger.unknown_to_legacy(
            received_before=now - self.unknown_age, limit=_REPORTED_IDS
        )
        finding = {"checked_at": now.isoformat(), "count": count, "order_ids": order_ids}
        self.ledger.set_value(UNKNOWN_TO_LEGACY_KEY, json.dumps(finding))
        if count:
            _log.warning("orders_unknown_to_legacy", count=count, order_ids=_first(order_ids))
        return count


def _first(order_ids: Sequence[str], n: int = 10) -> list[str]:
    return list(order_ids[:n])


def _notification(order: LegacyOrder) -> OrderNotification:
    """The notification the intake missed, rebuilt from what the legacy app holds."""
    return OrderNotification(
        order_id=order.order_id,
        user_guid=order.user_guid,
        unit_id=order.unit_id,
        city=order.city,
        amount_cents=order.amount_cents,
        currency=order.currency,
        quantity=order.quantity,
        created_at=order.created_at,
    )
