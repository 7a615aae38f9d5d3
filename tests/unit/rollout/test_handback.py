"""Hand-back on kill: in-flight instant orders before payment go to the batch jobs, safely."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger
from strangler.legacy_adapter.exceptions import LegacyUnavailable
from strangler.orders import OrderStatus, Route
from strangler.rollout.handback import hand_back_in_flight
from tests.unit.ledger.support import Clock, make_decision, make_order, make_step
from tests.unit.routing.fakes import FakeLegacy


def _routed(ledger: SqlLedger, order_id: str, path: Route = Route.INSTANT) -> None:
    ledger.record_received(make_order(order_id), source="test")
    ledger.pin_decision(order_id, make_decision(path))


def _status(ledger: SqlLedger, order_id: str) -> tuple[str, str | None]:
    story = ledger.story(order_id)
    assert story is not None
    return story["status"], story.get("handoff")


def test_unpaid_instant_orders_are_handed_back_and_the_rest_left(
    ledger: SqlLedger, clock: Clock
) -> None:
    """Routed and running instant orders before payment move; paid, legacy, terminal stay."""
    _routed(ledger, "routed")
    _routed(ledger, "scanned")
    ledger.transition("scanned", OrderStatus.RUNNING)
    ledger.record_step(make_step("scanned", "fraud_scan"))
    _routed(ledger, "paid")
    ledger.transition("paid", OrderStatus.RUNNING)
    ledger.record_step(make_step("paid", "authorize_payment", decision="authorized"))
    _routed(ledger, "done")
    ledger.transition("done", OrderStatus.FULFILLED)
    _routed(ledger, "old-path", Route.LEGACY)
    _routed(ledger, "shadowed", Route.SHADOW)
    legacy = FakeLegacy()

    result = hand_back_in_flight(ledger, legacy, reason="bad release", wait_s=0, clock=clock)

    assert (result.moved, result.busy, result.failed) == (("routed", "scanned"), (), {})
    assert [order_id for order_id, _ in legacy.released] == ["routed", "scanned"]
    assert _status(ledger, "routed")[0] == "fell_back"
    assert _status(ledger, "paid")[0] == "running"
    assert _status(ledger, "done")[0] == "fulfilled"
    assert "rollout killed, handed back in flight: bad release" in legacy.released[0][1]


def test_hand_back_records_fell_back_with_the_kill_as_reason(ledger: SqlLedger) -> None:
    """The ledger's story shows the fell_back transition naming the kill, handoff fallback."""
    _routed(ledger, "o-1")
    hand_back_in_flight(ledger, FakeLegacy(), reason="p99 too high", wait_s=0)
    story = ledger.story("o-1")
    assert story is not None
    fell_back = [t for t in story["transitions"] if t["status"] == "fell_back"]
    assert fell_back[0]["reason"] == "rollout killed, handed back in flight: p99 too high"
    assert ledger.counts().handoffs == {"fallback": 1}


def test_a_second_hand_back_moves_nothing(ledger: SqlLedger) -> None:
    """Running the hand-back twice moves each order once."""
    _routed(ledger, "o-1")
    legacy = FakeLegacy()
    first = hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0)
    second = hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0)
    assert (len(first.moved), len(second.moved), len(legacy.released)) == (1, 0, 1)


def test_an_order_a_worker_holds_is_left_until_its_lease_expires(
    ledger: SqlLedger, clock: Clock
) -> None:
    """A live worker's lease keeps the order (busy); once it expires, the order moves."""
    _routed(ledger, "held")
    assert [o.order_id for o in ledger.claim_due("worker-1", limit=5, lease_seconds=30)] == ["held"]
    legacy = FakeLegacy()

    while_held = hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0, clock=clock)
    clock.advance(31)
    after_expiry = hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0, clock=clock)

    assert (while_held.moved, while_held.busy) == ((), ("held",))
    assert (after_expiry.moved, after_expiry.busy) == (("held",), ())
    assert not ledger.release_lease("held", "worker-1", done=True)


def test_legacy_unreachable_leaves_the_order_due_and_reports_it(ledger: SqlLedger) -> None:
    """A release that fails at the legacy app is reported and the order stays in flight."""
    _routed(ledger, "o-1")
    legacy = FakeLegacy(release_errors=[LegacyUnavailable("legacy app down")])
    result = hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0)
    assert (result.moved, list(result.failed)) == ((), ["o-1"])
    assert _status(ledger, "o-1")[0] == "routed"
    assert "1 could not be released" in result.summary()


def test_a_database_failure_is_a_ledger_error_naming_the_read(ledger: SqlLedger) -> None:
    """The ledger raises LedgerError itself (never SQLAlchemy's), and nothing is released."""
    _routed(ledger, "routed")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE step_results"))
    legacy = FakeLegacy()

    with pytest.raises(LedgerError, match="could not find in-flight instant orders") as caught:
        hand_back_in_flight(ledger, legacy, reason="kill", wait_s=0)

    assert (caught.value.url, legacy.released) == (ledger.url, [])
