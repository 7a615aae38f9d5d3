"""The legacy follower: records what the batch jobs do to the orders they run for us.

Orders on the legacy and shadow paths, and instant-path orders handed back to the batch
jobs, are followed: the follower polls the legacy app in bulk
(``orders_listed_since(cursor)``, building only the orders the ledger has open), records
each batch-job step from an order's history as a step of path ``legacy``, and ends the
order with the legacy app's terminal status and time. The cursor lives in the ledger, so
a restart carries on where it stopped; orders the bulk poll cannot show (finished before
the ledger knew them) are looked up one by one; where processes share a ledger, one
follower at a time polls. Under the same role, each poll ends with the reconciliation
sweep (strangler.background.reconciler), when given.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from strangler.background.role_loop import Cadence, RoleLedger, RoleLoop
from strangler.backoff import Backoff
from strangler.exceptions import LedgerError, StranglerError
from strangler.ledger.ops_queries import HEARTBEAT_KEYS
from strangler.ledger.records import default_owner, utc_now
from strangler.legacy_adapter.exceptions import LegacyUnavailable, OrderNotFound
from strangler.legacy_adapter.models import LegacyOrder, LegacyStepRecord, ListedOrder
from strangler.orders import Route, StepResult
from strangler.protocols import LegacyPath

__all__ = ["CURSOR_KEY", "ROLE", "Follower", "FollowerLedger", "legacy_steps"]

_log = structlog.get_logger()

CURSOR_KEY = "legacy_follower.cursor"
ROLE = "legacy_follower"
BATCH_ACTOR = "batch"
_HEARTBEAT_S = 5.0
# Orders whose last recorded sighting the follower remembers (see Follower.apply).
_REMEMBERED_SIGHTINGS = 10_000

_Sighting = tuple[str, datetime | None, list[tuple[StepResult, int]]]


def legacy_steps(order: LegacyOrder) -> list[tuple[StepResult, int]]:
    """The batch jobs' steps in a legacy order's history, numbered per step name.

    Steps the per-order API performed (actor ``api``: the instant path, already recorded
    by the router) are left out. The history has one time per step, so ``started_at``
    and ``finished_at`` are both that time.
    """
    seen: Counter[str] = Counter()
    steps = []
    for record in order.history:
        if record.actor != BATCH_ACTOR:
            continue
        step = StepResult(
            order_id=order.order_id,
            path=Route.LEGACY,
            step=record.step,
            decision=record.decision,
            started_at=record.at,
            finished_at=record.at,
            payload=_compared_facts(order, record),
            error=record.error,
        )
        steps.append((step, seen[record.step]))
        seen[record.step] += 1
    return steps


def _compared_facts(order: LegacyOrder, record: LegacyStepRecord) -> dict[str, Any]:
    """A batch step's payload: its actor, and what the comparison needs (never the codes)."""
    payload: dict[str, Any] = {"actor": record.actor}
    if record.reason is not None:
        payload["reason"] = record.reason
    if record.step == "fulfill" and record.decision == "fulfilled":
        payload["voucher_count"] = len(order.vouchers)
    return payload


class FollowerLedger(RoleLedger, Protocol):
    """The part of the ledger the follower reads and writes (SqlLedger in production)."""

    def open_orders(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` the ledger has and are not terminal yet."""
        ...

    def stale_followed(
        self, *, never_seen_before: datetime, seen_before: datetime, limit: int
    ) -> list[str]: ...

    def record_legacy_progress(
        self,
        order_id: str,
        steps: Sequence[tuple[StepResult, int]],
        *,
        legacy_status: str,
        legacy_terminal_at: datetime | None = None,
    ) -> bool: ...

    def mark_checked(self, order_ids: Sequence[str], *, note: str | None = None) -> None: ...

    def get_value(self, name: str) -> str | None: ...

    def set_value(self, name: str, value: str) -> None: ...


class Follower:
    """Polls the legacy app for followed orders and records their progress.

    ``interval_s`` is the pause between polls; when the legacy app is unavailable the
    pause doubles up to ``max_backoff_s``. Where several processes share a ledger, one
    follower at a time polls: the one holding the ledger's ``legacy_follower`` role,
    which passes to another within ``role_seconds`` (default ten intervals, at least
    5 s) when its holder stops or dies. The legacy contract makes ``updated_at``
    strictly increasing in commit order and ``updated_since`` inclusive, so asking from
    the newest ``updated_at`` seen misses nothing (that order comes back once more, and
    recording it again changes nothing).

    The bulk poll shows an order again whenever the legacy app touches it (each payment
    attempt of the instant path, say), mostly with nothing new for the ledger: a sighting
    equal to the last one this follower recorded for the order (status, terminal time and
    batch steps) is not written again (see :meth:`apply`); ``writes`` counts the sightings
    written.
    """

    def __init__(
        self,
        ledger: FollowerLedger,
        legacy: LegacyPath,
        *,
        interval_s: float = 1.0,
        max_backoff_s: float = 30.0,
        batch_limit: int = 500,
        max_pages: int = 20,
        first_look_after_s: float | None = None,
        recheck_after_s: float = 600.0,
        reconcile_limit: int = 50,
        owner: str | None = None,
        role_seconds: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        reconcile: Callable[[], object] | None = None,
        on_legacy_terminal: Callable[[str], None] | None = None,
        sweep: Callable[[], object] | None = None,
    ) -> None:
        if interval_s <= 0 or max_backoff_s < interval_s:
            raise ValueError(
                "the follower needs 0 < interval_s <= max_backoff_s, got "
                f"{interval_s} and {max_backoff_s}"
            )
        self.ledger = ledger
        self.legacy = legacy
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.batch_limit = batch_limit
        self.max_pages = max_pages
        self.first_look_after = timedelta(
            seconds=first_look_after_s if first_look_after_s is not None else 5 * interval_s
        )
        self.recheck_after = timedelta(seconds=recheck_after_s)
        self.reconcile_limit = reconcile_limit
        self.owner = owner or default_owner()
        self.role_seconds = role_seconds if role_seconds is not None else max(5.0, 10 * interval_s)
        self._clock = clock
        self._reconcile = reconcile
        self._on_legacy_terminal = on_legacy_terminal
        self._sweep = sweep
        # The pass that succeeded, for /metrics; written at most every few seconds.
        self._heartbeats = Cadence(max(interval_s, _HEARTBEAT_S))
        self._recorded: OrderedDict[str, _Sighting] = OrderedDict()
        self.writes = 0
        self._loop = RoleLoop(
            ledger,
            ROLE,
            owner=self.owner,
            role_seconds=self.role_seconds,
            work=self.poll_once,
            backoff=Backoff(interval_s, max_backoff_s),
            failed=_poll_failed,
            name="follower",
        )

    def start(self) -> None:
        """Poll on a background thread until :meth:`stop`."""
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop polling and give up the role; False when the poll did not end in time."""
        return self._loop.stop(timeout)

    def poll_once(self) -> int:
        """One bulk poll (draining full pages), one look-up of stale orders, and the
        reconciliation sweep when one is due; returns orders seen by the first two.

        A pass that succeeds is noted in the ledger (``HEARTBEAT_KEYS["follower"]``, at
        most every 5 s), where ``/metrics`` reads the follower's last successful pass.

        Raises LegacyError when the legacy app fails and LedgerError when the ledger does.
        """
        seen = 0
        for _ in range(self.max_pages):
            page = self._poll_page()
            seen += page
            if page < self.batch_limit:
                break
        seen += self.look_up_stale()
        if self._reconcile is not None:
            self._reconcile()
        if self._sweep is not None:
            self._sweep()
        if self._heartbeats.due():
            self.ledger.set_value(HEARTBEAT_KEYS["follower"], self._clock().isoformat())
        return seen

    def look_up_stale(self) -> int:
        """Fetch, one by one, followed orders the bulk poll has not shown.

        An order the bulk poll never showed since it was routed is looked up once after
        ``first_look_after_s`` (default five poll intervals): the batch jobs may have
        finished it before the ledger knew it (a notification delivered late), and then
        no later update will show it. Orders seen once are looked up again only after
        ``recheck_after_s``, a safety net.
        """
        now = self._clock()
        stale = self.ledger.stale_followed(
            never_seen_before=now - self.first_look_after,
            seen_before=now - self.recheck_after,
            limit=self.reconcile_limit,
        )
        for order_id in stale:
            try:
                order = self.legacy.get_order(order_id)
            except OrderNotFound:
                _log.warning("followed_order_unknown_to_legacy", order_id=order_id)
                self.ledger.mark_checked([order_id], note="the legacy app does not know it")
                continue
            self._apply(order)
        return len(stale)

    def _poll_page(self) -> int:
        stored = self.ledger.get_value(CURSOR_KEY)
        cursor = datetime.fromisoformat(stored) if stored else None
        listed = self.legacy.orders_listed_since(cursor, limit=self.batch_limit)
        self.apply(listed)
        newest = max((entry.updated_at for entry in listed), default=cursor)
        if newest is not None and newest != cursor:
            self.ledger.set_value(CURSOR_KEY, newest.isoformat())
        return len(listed) if newest != cursor else 0

    def apply(self, listed: Sequence[ListedOrder]) -> int:
        """Record the progress of those ``listed`` orders the ledger has open; returns how
        many.

        Only those orders are built from the legacy app's answer (``ListedOrder.order``):
        most of a page is orders the ledger has ended or never had (the instant path's
        own calls update its orders too). So an order nobody follows is never parsed, and
        one that breaks the contract cannot stop the pass; a followed one that breaks it
        fails the pass (LegacyProtocolError) before the cursor moves, and the pass is
        tried again, as when the legacy app is unavailable.

        Orders not routed yet are recorded too: an order the batch jobs finish before it
        is routed to them then ends as soon as it is (see SqlLedger.record_legacy_progress).
        An order seen exactly as this follower last recorded it is skipped: the ledger
        holds that sighting already (recording is idempotent, so the write would change
        nothing but the order's last-checked time, which only the one-by-one look-up of
        stale orders reads, and that look-up always writes). A newer sighting recorded by
        another follower meanwhile is not overwritten by this older one either.
        """
        known = self.ledger.open_orders([entry.order_id for entry in listed])
        for entry in listed:
            if entry.order_id in known:
                self._apply(entry.order(), skip_unchanged=True)
        return len(known)

    def _apply(self, order: LegacyOrder, *, skip_unchanged: bool = False) -> None:
        terminal_at = (order.terminal_at or order.updated_at) if order.is_terminal else None
        sighting: _Sighting = (order.status, terminal_at, legacy_steps(order))
        if skip_unchanged and self._recorded.get(order.order_id) == sighting:
            return
        ended = self.ledger.record_legacy_progress(
            order.order_id, sighting[2], legacy_status=order.status, legacy_terminal_at=terminal_at
        )
        self.writes += 1
        self._remember(order.order_id, None if ended else sighting)
        if ended:
            _log.info("order_terminal", order_id=order.order_id, path="legacy", status=order.status)
            if self._on_legacy_terminal is not None:
                self._on_legacy_terminal(order.order_id)

    def _remember(self, order_id: str, sighting: _Sighting | None) -> None:
        """Keep ``sighting`` as the last one recorded for the order (None: forget it)."""
        self._recorded.pop(order_id, None)
        if sighting is None:
            return
        self._recorded[order_id] = sighting
        if len(self._recorded) > _REMEMBERED_SIGHTINGS:
            self._recorded.popitem(last=False)


def _poll_failed(exc: Exception, retry_in_s: float) -> None:
    if isinstance(exc, LegacyUnavailable):
        _log.warning("legacy_unavailable", error=str(exc), retry_in_s=retry_in_s)
    elif isinstance(exc, (StranglerError, LedgerError)):
        _log.error("follower_poll_failed", error=str(exc), retry_in_s=retry_in_s)
    else:  # the follower outlives any one bad poll
        _log.exception("follower_poll_crashed", retry_in_s=retry_in_s)
