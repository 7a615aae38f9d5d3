"""Reconciliation: orders the intake missed are adopted; orders legacy never had are reported."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from strangler.background.follower import Follower
from strangler.background.reconciler import CURSOR_KEY, Reconciler, Sweep
from strangler.ledger import SqlLedger
from strangler.ledger.ops_queries import HEARTBEAT_KEYS
from strangler.ledger.sql_ledger import UNKNOWN_TO_LEGACY_KEY
from tests.unit.ledger.support import T0, Clock, make_order
from tests.unit.routing.fakes import BATCH_FULFILLED, FakeLegacy, legacy_order

EARLIER = T0 - timedelta(minutes=10)


@pytest.fixture
def legacy() -> FakeLegacy:
    """The legacy app's orders in memory."""
    return FakeLegacy()


def reconciler(ledger: SqlLedger, legacy: FakeLegacy, clock: Clock, **options: float) -> Reconciler:
    """A reconciler on the fakes: 30 s grace, orders unknown to legacy after an hour."""
    return Reconciler(ledger, legacy, clock=clock, grace_s=30, **options)  # type: ignore[arg-type]


def test_a_missed_terminal_order_is_adopted_as_reconciled(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An order only legacy has is recorded: source reconciled, legacy path, steps, terminal."""
    legacy.put(legacy_order("o-1", "fulfilled", updated_at=EARLIER, history=BATCH_FULFILLED))
    sweep = reconciler(ledger, legacy, clock).sweep()
    told = ledger.story("o-1")
    assert told is not None
    assert Sweep(read=1, adopted=1, unknown_to_legacy=0) == sweep
    assert (
        told["source"],
        told["status"],
        told["decision"]["path"],
        told["decision"]["reason"],
    ) == ("reconciled", "fulfilled", "legacy", "missed_intake")
    assert [s["step"] for s in told["steps"]] == ["fraud_scan", "authorize_payment", "fulfill"]
    assert told["timestamps"]["terminal"] == EARLIER.isoformat()
    assert ledger.counts().by_source == {"reconciled": 1}
    assert legacy.fetched == []


def test_an_adopted_open_order_is_followed_to_its_end(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An adopted order still in the batch jobs ends once the follower sees it terminal."""
    legacy.put(legacy_order("o-1", "authorized", updated_at=EARLIER))
    reconciler(ledger, legacy, clock).sweep()
    before = ledger.story("o-1")
    legacy.put(legacy_order("o-1", "fulfilled", updated_at=T0, history=BATCH_FULFILLED))
    Follower(ledger, legacy, clock=clock).poll_once()  # type: ignore[arg-type]
    after = ledger.story("o-1")
    assert before is not None
    assert after is not None
    assert (before["status"], after["status"]) == ("routed", "fulfilled")


def test_a_young_order_waits_out_the_grace(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An order created within the grace is not adopted yet, and the cursor waits for it."""
    young = dataclasses.replace(legacy_order("young", updated_at=T0), created_at=T0)
    legacy.put(legacy_order("old", updated_at=EARLIER))
    legacy.put(young)
    tracker = reconciler(ledger, legacy, clock)
    first = tracker.sweep()
    cursor = ledger.get_value(CURSOR_KEY)
    clock.advance(31)
    second = tracker.sweep()
    assert (first.adopted, second.adopted, cursor) == (1, 1, T0.isoformat())
    assert ledger.known_orders(["old", "young"]) == {"old", "young"}


def test_orders_the_ledger_has_are_left_alone(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An order the intake took in keeps its source and status; nothing is adopted twice."""
    ledger.record_received(make_order("o-1"), source="proxy")
    legacy.put(legacy_order("o-1", updated_at=EARLIER, history=BATCH_FULFILLED))
    tracker = reconciler(ledger, legacy, clock)
    sweeps = (tracker.sweep().adopted, tracker.sweep().adopted)
    told = ledger.story("o-1")
    assert told is not None
    assert (sweeps, told["source"], told["status"]) == ((0, 0), "proxy", "received")


def test_only_the_orders_the_ledger_lacks_are_built(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """A sweep builds an order from the listing only when it may adopt it."""
    ledger.record_received(make_order("known"), source="proxy")
    legacy.put(legacy_order("known", updated_at=EARLIER))
    legacy.put(legacy_order("missed", updated_at=EARLIER + timedelta(seconds=1)))
    sweep = reconciler(ledger, legacy, clock).sweep()
    assert (sweep.read, sweep.adopted, legacy.built) == (2, 1, ["missed"])


def test_orders_legacy_never_had_are_reported_after_the_age(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An open order the legacy app never reported is logged, kept in kv and counted."""
    ledger.record_received(make_order("ghost"), source="notifications")
    tracker = reconciler(ledger, legacy, clock, unknown_age_s=3600)
    early = tracker.sweep().unknown_to_legacy
    clock.advance(3601)
    with capture_logs() as logs:
        late = tracker.sweep().unknown_to_legacy
    stored = json.loads(ledger.get_value(UNKNOWN_TO_LEGACY_KEY) or "{}")
    assert (early, late, stored["order_ids"]) == (0, 1, ["ghost"])
    assert ledger.counts().unknown_to_legacy == 1
    assert [e["order_ids"] for e in logs if e["event"] == "orders_unknown_to_legacy"] == [["ghost"]]


def test_the_follower_runs_the_sweep_at_its_interval(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """Each follower poll offers a sweep; the reconciler sweeps at most once per interval."""
    ticks = iter([0.0, 1.0, 11.0])
    tracker = Reconciler(
        ledger,
        legacy,  # type: ignore[arg-type]
        clock=clock,
        interval_s=10,
        monotonic=lambda: next(ticks),
    )
    sweeps: list[Sweep | None] = []
    follower = Follower(
        ledger,
        legacy,  # type: ignore[arg-type]
        clock=clock,
        reconcile=lambda: sweeps.append(tracker.maybe_sweep()),
    )
    legacy.put(legacy_order("o-1", updated_at=EARLIER))
    for _ in range(3):
        follower.poll_once()
    assert [sweep is not None for sweep in sweeps] == [True, False, True]
    assert ledger.known_orders(["o-1"]) == {"o-1"}


def test_a_sweep_is_noted_for_metrics(ledger: SqlLedger, legacy: FakeLegacy, clock: Clock) -> None:
    """Each sweep that ends writes the reconciler's heartbeat with the ledger's time."""
    reconciler(ledger, legacy, clock).sweep()

    assert ledger.get_value(HEARTBEAT_KEYS["reconciler"]) == T0.isoformat()
