"""Test doubles for embedders: fakes of the seams strangler stands on, and a manual clock.

As httpx offers ``MockTransport``, strangler offers these so that code built on it can be
tested without a legacy app, an Unleash server or AWS:

- :class:`FakeFlags` is a ``FlagSource`` that sends every order down one settable path;
- :class:`FakeLegacy` is a ``LegacyPath`` (the legacy app's orders in memory);
- :class:`FakeInstant` is an ``InstantBackend`` that plays a script per order;
- :class:`ManualClock` is a clock for ``clock=`` arguments that moves only when told;
- :func:`execution_result` and :func:`legacy_order` build plausible records.

Each fake records what it was asked (``calls``, ``runs``, ``claimed``, ``released`` ...),
so a test asserts on values rather than on mocks. Light: nothing heavy is imported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from strangler.instant.results import ExecutionResult
from strangler.legacy_adapter.exceptions import OrderNotFound
from strangler.legacy_adapter.models import LegacyOrder, LegacyStepRecord, ListedOrder
from strangler.orders import Decision, OrderNotification, Route, StepResult
from strangler.protocols import FlagStatus

__all__ = [
    "RUN_STARTED_AT",
    "FakeFlags",
    "FakeInstant",
    "FakeLegacy",
    "ManualClock",
    "Script",
    "execution_result",
    "legacy_order",
]

#: When every :func:`execution_result` starts (its steps follow a second apart).
RUN_STARTED_AT = datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)


class ManualClock:
    """A clock that only moves when told to (thread-safe); call it for the time."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


_STEPS_BY_OUTCOME: dict[str, list[tuple[str, str | None]]] = {
    "fulfilled": [
        ("claim", "claimed"),
        ("fraud_scan", "pass"),
        ("authorize_payment", "authorized"),
        ("fulfill", "fulfilled"),
    ],
    "rejected_fraud": [("claim", "claimed"), ("fraud_scan", "reject")],
    "payment_declined": [
        ("claim", "claimed"),
        ("fraud_scan", "pass"),
        ("authorize_payment", "declined"),
    ],
    "fell_back": [("claim", "claimed"), ("fraud_scan", None), ("release", "released")],
    "legacy_owned": [("claim", None)],
}


class FakeFlags:
    """A flag source that sends every order down ``path`` (settable)."""

    def __init__(self, path: Route = Route.INSTANT, rollout: int = 50) -> None:
        self.path = path
        self.rollout = rollout
        self.revision = "rev-1"
        self.error: Exception | None = None
        self.calls = 0

    def decide(self, order: OrderNotification) -> Decision:
        """The decision for ``path``; raises ``error`` when one is set."""
        self.calls += 1
        if self.error is not None:
            raise self.error
        variant = "disabled" if self.path is Route.LEGACY else self.path.value
        return Decision(self.path, variant, self.rollout, self.revision, f"fake: {order.order_id}")

    def status(self) -> FlagStatus:
        """Always loaded, in mode ``fake``."""
        return FlagStatus(loaded=True, mode="fake", revision=self.revision, loaded_at=None)


def execution_result(
    order_id: str,
    outcome: str | None = "fulfilled",
    *,
    dry_run: bool = False,
    status: str = "SUCCEEDED",
    error: str | None = None,
    cause: str | None = None,
    steps: Sequence[tuple[str, str | None]] | None = None,
) -> ExecutionResult:
    """An execution record as a backend would return it, with plausible steps."""
    planned = steps if steps is not None else _STEPS_BY_OUTCOME.get(outcome or "", [])
    results = tuple(
        StepResult(
            order_id=order_id,
            path=Route.INSTANT,
            step=name,
            decision=decision,
            started_at=RUN_STARTED_AT + timedelta(seconds=n),
            finished_at=RUN_STARTED_AT + timedelta(seconds=n, milliseconds=200),
            error=None if decision else "step failed",
            dry_run=dry_run,
        )
        for n, (name, decision) in enumerate(planned)
    )
    return ExecutionResult(
        execution_id=f"exec-{order_id}{'-dry' if dry_run else ''}",
        order_id=order_id,
        status=status,
        dry_run=dry_run,
        started_at=RUN_STARTED_AT,
        finished_at=RUN_STARTED_AT + timedelta(seconds=len(planned))
        if status != "RUNNING"
        else None,
        outcome=outcome,
        error=error,
        cause=cause,
        steps=results,
    )


Script = ExecutionResult | Exception | str


class FakeInstant:
    """An instant backend that plays a script per order (results, outcomes or errors).

    An order with no script left is fulfilled. ``delay_s`` makes each run take that long.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.scripts: dict[str, list[Script]] = {}
        self.runs: Counter[tuple[str, bool]] = Counter()
        self.delay_s = delay_s
        self.timeouts: list[float] = []
        self._lock = threading.Lock()

    def script(self, order_id: str, *items: Script) -> None:
        """What the next runs of ``order_id`` return or raise, in order."""
        self.scripts[order_id] = list(items)

    def run(
        self, order: OrderNotification, *, dry_run: bool = False, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Play the order's next scripted item (or fulfil it), counting the run."""
        with self._lock:
            self.runs[order.order_id, dry_run] += 1
            self.timeouts.append(timeout_s)
            queue = self.scripts.get(order.order_id) or []
            item: Script = queue.pop(0) if queue else "fulfilled"
        if self.delay_s:
            time.sleep(self.delay_s)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            return execution_result(order.order_id, item, dry_run=dry_run)
        return item


@dataclass
class FakeLegacy:
    """The legacy app's orders in memory, with scripted release failures.

    ``built``: the orders a listing's reader asked for whole (``ListedOrder.order``).
    """

    orders: dict[str, LegacyOrder] = field(default_factory=dict)
    released: list[tuple[str, str]] = field(default_factory=list)
    release_errors: list[Exception] = field(default_factory=list)
    poll_errors: list[Exception] = field(default_factory=list)
    polls: list[datetime | None] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)

    def claim(self, order_id: str) -> bool:
        """Record the claim; always True."""
        self.claimed.append(order_id)
        return True

    def release(self, order_id: str, reason: str) -> None:
        """Record the release, or raise the next of ``release_errors``."""
        if self.release_errors:
            raise self.release_errors.pop(0)
        self.released.append((order_id, reason))

    def get_order(self, order_id: str) -> LegacyOrder:
        """The stored order; OrderNotFound when there is none."""
        self.fetched.append(order_id)
        try:
            return self.orders[order_id]
        except KeyError:
            raise OrderNotFound(order_id, body={"error": "not_found"}) from None

    def orders_updated_since(
        self, since: datetime | None, *, limit: int = 500
    ) -> Sequence[LegacyOrder]:
        """Orders updated at or after ``since``, oldest first; or the next of ``poll_errors``."""
        self.polls.append(since)
        if self.poll_errors:
            raise self.poll_errors.pop(0)
        found = sorted(
            (o for o in self.orders.values() if since is None or o.updated_at >= since),
            key=lambda o: o.updated_at,
        )
        return found[:limit]

    def orders_listed_since(
        self, since: datetime | None, *, limit: int = 500
    ) -> Sequence[ListedOrder]:
        """As :meth:`orders_updated_since`; ``built`` counts the orders asked for whole."""
        return [
            ListedOrder(order.order_id, order.updated_at, partial(self._build, order))
            for order in self.orders_updated_since(since, limit=limit)
        ]

    def _build(self, order: LegacyOrder) -> LegacyOrder:
        self.built.append(order.order_id)
        return order

    def put(self, order: LegacyOrder) -> None:
        """Store (or replace) an order."""
        self.orders[order.order_id] = order


def legacy_order(
    order_id: str,
    status: str = "fulfilled",
    *,
    updated_at: datetime,
    history: Sequence[tuple[str, str, str | None]] = (),
    mode: str = "batch",
) -> LegacyOrder:
    """A legacy order with ``history`` as (step, actor, decision), one minute apart."""
    records = tuple(
        LegacyStepRecord(
            step=step,
            actor=actor,
            decision=decision,
            at=updated_at - timedelta(minutes=len(history) - n),
            error=None if decision else "job error",
        )
        for n, (step, actor, decision) in enumerate(history)
    )
    terminal = status in {"fulfilled", "rejected_fraud", "payment_declined", "failed"}
    return LegacyOrder(
        order_id=order_id,
        status=status,
        processing_mode=mode,
        user_guid=f"user-{order_id}",
        unit_id="unit-7",
        created_at=updated_at - timedelta(hours=1),
        updated_at=updated_at,
        terminal_at=updated_at if terminal else None,
        history=records,
    )
