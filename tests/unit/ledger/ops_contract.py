"""SqlLedger.ops_figures, the figures /metrics alerts on, run on each database.

tests/unit/ledger/test_sqlite_ops_figures.py runs it on SQLite and
tests/integration/test_ops_figures_postgres.py on the local PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from strangler.ledger import RolloutEvent, SqlLedger, ledger_from_url
from strangler.ledger.ops_queries import HEARTBEAT_KEYS, GateTally, OpenLoad
from strangler.orders import OrderStatus, Route
from tests.unit.ledger.comparisons_contract import _shadow_comparison
from tests.unit.ledger.support import T0, Clock, make_decision, make_order


class OpsFiguresContract:
    """What every ledger database answers for the alerting figures."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock(T0)

    @pytest.fixture
    def ledger(self, ledger_url: str, clock: Clock) -> Iterator[SqlLedger]:
        ledger = ledger_from_url(ledger_url, clock=clock)
        yield ledger
        ledger.close()

    def test_an_empty_ledger(self, ledger: SqlLedger) -> None:
        """Nothing open, every gate decision at 0, no heartbeat, nothing compared."""
        figures = ledger.ops_figures()

        assert (figures.unrouted, figures.in_flight, figures.heartbeats) == (
            OpenLoad(0, None),
            {},
            {},
        )
        assert set(figures.gate.values()) == {GateTally(0, None)}
        assert figures.compared_steps == {}

    def test_open_orders_by_path_and_the_oldest(self, ledger: SqlLedger, clock: Clock) -> None:
        """Unrouted orders are the backlog; routed open ones count per path; ended ones not."""
        ledger.record_received(make_order("waiting"), source="api")
        clock.advance(10)
        for order_id, path in (
            ("s-1", Route.SHADOW),
            ("s-2", Route.SHADOW),
            ("i-1", Route.INSTANT),
        ):
            ledger.record_received(make_order(order_id), source="api")
            ledger.pin_decision(order_id, make_decision(path))
            clock.advance(1)
        ledger.transition("i-1", OrderStatus.FULFILLED)
        clock.advance(5)

        figures = ledger.ops_figures()

        assert figures.unrouted == OpenLoad(1, T0)
        assert figures.in_flight == {"shadow": OpenLoad(2, T0 + timedelta(seconds=10))}
        assert figures.age_s(figures.unrouted) == 18
        assert figures.at == T0 + timedelta(seconds=18)

    def test_gate_rounds_are_told_from_other_rollout_changes(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """Rollout events whose reason is a gate round count by decision; others do not."""
        reasons = [
            "rollout gate hold: not enough data",
            "rollout gate roll_back: rolling back to legacy: a check failed",
            "rollout gate hold: inconclusive",
            "by hand: rollout gate advance: quoted, not a gate round",
            "rollout gate rollXback: a lookalike of a decision",
        ]
        for n, reason in enumerate(reasons):
            event = RolloutEvent(clock.advance(1), "ci", 5, 5, reason, f"rev-{n}")
            ledger.record_rollout_event(event)

        gate = ledger.ops_figures().gate

        assert gate == {
            "advance": GateTally(0, None),
            "hold": GateTally(2, T0 + timedelta(seconds=3)),
            "fail": GateTally(0, None),
            "roll_back": GateTally(1, T0 + timedelta(seconds=2)),
        }

    def test_heartbeats_are_the_kv_rows_update_times(self, ledger: SqlLedger, clock: Clock) -> None:
        """Each role's heartbeat is when its kv row was last written; other rows are not."""
        ledger.set_value(HEARTBEAT_KEYS["reconciler"], "x")
        clock.advance(30)
        ledger.set_value(HEARTBEAT_KEYS["reconciler"], "y")
        ledger.set_value("legacy_follower.cursor", "z")

        assert ledger.ops_figures().heartbeats == {"reconciler": T0 + timedelta(seconds=30)}

    def test_compared_steps_within_the_hour(self, ledger: SqlLedger, clock: Clock) -> None:
        """Compared steps count by kind, step and verdict for orders routed in the last hour."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision(Route.SHADOW))
        ledger.record_comparison(_shadow_comparison("o-1", fraud="reject"))
        clock.advance(60)
        within = ledger.ops_figures().compared_steps
        clock.advance(3600)

        assert within == {
            ("shadow", "fraud_scan", "mismatch"): 1,
            ("shadow", "outcome", "mismatch"): 1,
        }
        assert ledger.ops_figures().compared_steps == {}
