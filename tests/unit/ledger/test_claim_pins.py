"""SQLite's claim that also pins: one transaction claims a batch and pins its decisions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.ledger import Handoff, LeasedOrder, SqlLedger
from strangler.ledger.engine import create_ledger_engine
from strangler.orders import Decision, OrderStatus, Route
from tests.unit.ledger.support import make_decision, make_order


class Statements:
    """Counts the write transactions an engine's SQLite connections begin."""

    def __init__(self, engine: sa.Engine) -> None:
        self.commits = 0
        sa.event.listen(engine, "connect", self._trace)

    def _trace(self, dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(self._count)

    def _count(self, sql: str) -> None:
        # Every write transaction (and only a write) begins IMMEDIATE; reads' snapshots
        # begin and commit too, so COMMITs would count them.
        if sql == "BEGIN IMMEDIATE":
            self.commits += 1


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[SqlLedger, Statements]]:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    statements = Statements(engine)
    ledger = SqlLedger(engine)
    yield ledger, statements
    ledger.close()


def decide_as(path: Route) -> tuple[list[str], Callable[[LeasedOrder], Decision]]:
    """A ``decide`` sending every order down ``path``, and the order_ids it was asked about."""
    asked: list[str] = []

    def decide(order: LeasedOrder) -> Decision:
        asked.append(order.order_id)
        return make_decision(path, reason=f"claimed: {order.order_id}")

    return asked, decide


def test_one_commit_claims_and_pins_a_batch(counted: tuple[SqlLedger, Statements]) -> None:
    """Eight orders are claimed and their decisions pinned in one commit (the claim, then a
    pin per order, took nine before)."""
    ledger, statements = counted
    for n in range(8):
        ledger.record_received(make_order(f"o-{n}"), source="api")
    _asked, decide = decide_as(Route.INSTANT)
    before = statements.commits
    claimed = ledger.claim_due("w", limit=8, lease_seconds=30, decide=decide)
    assert statements.commits - before == 1
    assert [(o.order_id, o.status, o.pinned_now) for o in claimed] == [
        (f"o-{n}", OrderStatus.RUNNING, True) for n in range(8)
    ]


@pytest.mark.parametrize(
    ("path", "status", "held_by"),
    [
        pytest.param(Route.INSTANT, OrderStatus.RUNNING, "w", id="instant-started"),
        pytest.param(Route.SHADOW, OrderStatus.ROUTED, "w", id="shadow-routed"),
        pytest.param(Route.LEGACY, OrderStatus.ROUTED, None, id="legacy-released"),
    ],
)
def test_the_claim_pins_as_a_worker_would(
    counted: tuple[SqlLedger, Statements], path: Route, status: OrderStatus, held_by: str | None
) -> None:
    """Pinned by the claim, an instant order is running, a shadow one routed (both still
    leased), and a legacy one routed with its lease released; the story has the decision
    and the transitions, as pin_decision leaves them."""
    ledger, _ = counted
    ledger.record_received(make_order("o-1"), source="api")
    asked, decide = decide_as(path)
    [order] = ledger.claim_due("w", limit=1, lease_seconds=30, decide=decide)
    story = ledger.story("o-1")
    assert story is not None
    moves = [move["status"] for move in story["transitions"]]
    expected_moves = (
        ["received", "routed", "running"] if path is Route.INSTANT else ["received", "routed"]
    )
    assert (asked, order.decision, order.status) == (
        ["o-1"],
        make_decision(path, reason="claimed: o-1"),
        status,
    )
    assert (story["status"], story["decision"]["path"], moves) == (
        status,
        path.value,
        expected_moves,
    )
    with ledger.engine.connect() as conn:
        lease = conn.execute(sa.text("SELECT lease_owner, needs_dispatch FROM orders")).one()
    assert (held_by, held_by is not None) == tuple(lease)
    # A legacy order, released, is not due again: the batch jobs have it.
    assert ledger.claim_due("other", limit=1, lease_seconds=30) == []


def test_a_decided_order_is_not_decided_again(counted: tuple[SqlLedger, Statements]) -> None:
    """An order resumed with its decision pinned comes back as it is: ``decide`` is not
    asked and nothing is pinned now."""
    ledger, _ = counted
    ledger.record_received(make_order("o-1"), source="api")
    ledger.pin_decision("o-1", make_decision(Route.INSTANT), start_running=True)
    asked, decide = decide_as(Route.LEGACY)
    [order] = ledger.claim_due("w", limit=1, lease_seconds=30, decide=decide)
    assert (asked, order.decision, order.pinned_now) == ([], make_decision(Route.INSTANT), False)


def test_a_failing_decide_rolls_the_claim_back(counted: tuple[SqlLedger, Statements]) -> None:
    """An exception from ``decide`` leaves nothing claimed and nothing pinned: the orders
    are due, undecided, for the next claim."""
    ledger, _ = counted
    for n in range(2):
        ledger.record_received(make_order(f"o-{n}"), source="api")

    def failing(order: LeasedOrder) -> Decision:
        raise RuntimeError(f"no decision for {order.order_id}")

    with pytest.raises(RuntimeError, match="no decision for o-0"):
        ledger.claim_due("w", limit=2, lease_seconds=30, decide=failing)
    again = ledger.claim_due("w2", limit=2, lease_seconds=30)
    assert [(o.order_id, o.decision, o.attempts) for o in again] == [
        ("o-0", None, 1),
        ("o-1", None, 1),
    ]


def test_without_decide_the_claim_pins_nothing(counted: tuple[SqlLedger, Statements]) -> None:
    """The claim alone leaves the decision to the worker, as before."""
    ledger, _ = counted
    ledger.record_received(make_order("o-1"), source="api")
    [order] = ledger.claim_due("w", limit=1, lease_seconds=30)
    assert (order.decision, order.status, order.pinned_now) == (None, OrderStatus.RECEIVED, False)


def test_a_pinned_order_is_the_claimed_one_with_its_decision() -> None:
    """LeasedOrder.pinned_as is dataclasses.replace with the decision, the status and
    pinned_now, field for field (a field added to LeasedOrder must be added to it too)."""
    order = LeasedOrder(
        order_id="a",
        notification=make_order("a"),
        status=OrderStatus.RECEIVED,
        decision=None,
        handoff=Handoff.FALLBACK,
        attempts=3,
        last_error="boom",
        lease_owner="me",
        lease_expires_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    decision = make_decision(Route.SHADOW)
    pinned = order.pinned_as(decision, OrderStatus.ROUTED)
    assert pinned == replace(order, decision=decision, status=OrderStatus.ROUTED, pinned_now=True)
    assert [f.name for f in fields(LeasedOrder)] == [
        "order_id",
        "notification",
        "status",
        "decision",
        "handoff",
        "attempts",
        "last_error",
        "lease_owner",
        "lease_expires_at",
        "pinned_now",
    ]
