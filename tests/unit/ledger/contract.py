"""The ledger's behaviour, run against each database by a subclass giving ``ledger_url``.

tests/unit/ledger/test_sqlite_ledger.py runs it on SQLite and
tests/integration/test_ledger_postgres.py on the local PostgreSQL server.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from strangler.exceptions import LedgerError
from strangler.ledger import Handoff, RolloutEvent, SqlLedger, ledger_from_url, schema
from strangler.ledger.durations import seconds_between
from strangler.ledger.engine import read_snapshot
from strangler.ledger.report_queries import load_report
from strangler.ledger.schema import SCHEMA_VERSION, schema_version
from strangler.orders import OrderStatus, Route
from strangler.sidecar.order_durations import OrderDurations
from tests.unit.ledger.support import T0, Clock, make_decision, make_order, make_step


class LedgerContract:
    """Behaviour every ledger database must show."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def ledger(self, ledger_url: str, clock: Clock) -> Iterator[SqlLedger]:
        ledger = ledger_from_url(ledger_url, clock=clock)
        yield ledger
        ledger.close()

    # -- schema ---------------------------------------------------------------------------

    def test_reopening_keeps_the_schema_and_the_data(self, ledger_url: str, clock: Clock) -> None:
        """Opening an existing ledger again migrates nothing and keeps its orders."""
        first = ledger_from_url(ledger_url, clock=clock)
        first.record_received(make_order("kept"), source="api")
        first.close()
        again = ledger_from_url(ledger_url, clock=clock)
        try:
            assert again.schema_version == SCHEMA_VERSION
            assert again.story("kept") is not None
        finally:
            again.close()

    def test_a_newer_schema_is_refused(self, ledger: SqlLedger, ledger_url: str) -> None:
        """A database written by a newer strangler is refused with a message saying so."""
        with ledger.engine.begin() as conn:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 1, applied_at=T0))
        with pytest.raises(LedgerError, match="newer than this strangler"):
            ledger_from_url(ledger_url)

    # -- intake ---------------------------------------------------------------------------

    def test_a_new_order_is_received(self, ledger: SqlLedger) -> None:
        """A new order is written once, with status received and due for dispatch."""
        assert ledger.record_received(make_order("o-1"), source="api") is True
        story = ledger.story("o-1")
        assert story is not None
        assert (story["status"], story["source"], story["decision"]) == ("received", "api", None)
        assert story["timestamps"]["received"] == T0.isoformat()
        assert ledger.counts().dispatch_queue == 1

    def test_a_duplicate_changes_nothing(self, ledger: SqlLedger, clock: Clock) -> None:
        """A duplicate notification is reported as such and leaves the first one untouched."""
        ledger.record_received(make_order("o-1", city="Boston"), source="sns")
        clock.advance(5)
        assert ledger.record_received(make_order("o-1", city="Denver"), source="api") is False
        story = ledger.story("o-1")
        assert story is not None
        assert (story["source"], story["notification"]["city"]) == ("sns", "Boston")
        assert story["timestamps"]["received"] == T0.isoformat()

    def test_the_payment_token_is_not_stored(self, ledger: SqlLedger) -> None:
        """The payment token is dropped before the notification is written."""
        ledger.record_received(make_order("o-1", payment_token="tok_SECRET"), source="api")
        with ledger.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT notification FROM orders")).scalar_one()
        assert "tok_SECRET" not in json.dumps(stored)
        story = ledger.story("o-1")
        assert story is not None
        assert "payment_token" not in story["notification"]

    def test_rejected_bodies_are_kept_once_and_masked(self, ledger: SqlLedger) -> None:
        """A rejected body is kept with its reason, payment values masked, duplicates once."""
        body = b'{"order_id": 7, "payment_token": "tok_SECRET"}'
        ledger.record_rejected(body, reason="order_id: must be a string", source="api")
        ledger.record_rejected(body, reason="order_id: must be a string", source="api")
        with ledger.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT raw_body, reason FROM rejected_intake")).all()
        assert len(rows) == 1
        assert b"tok_SECRET" not in bytes(rows[0].raw_body)
        assert rows[0].reason == "order_id: must be a string"
        assert ledger.counts().rejected == 1

    # -- decisions and transitions ------------------------------------------------------------

    def test_the_first_decision_is_pinned(self, ledger: SqlLedger) -> None:
        """The first decision is kept; a later one (say after a rollout change) is ignored."""
        ledger.record_received(make_order("o-1"), source="api")
        first = make_decision(Route.INSTANT, rollout=50)
        assert ledger.pin_decision("o-1", first) == first
        later = make_decision(Route.LEGACY, rollout=0, flag_revision="rev-2")
        assert ledger.pin_decision("o-1", later) == first
        story = ledger.story("o-1")
        assert story is not None
        assert story["status"] == "routed"
        assert story["decision"] == first.to_dict()

    def test_pinning_can_release_the_lease_in_the_same_transaction(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """With release_owner, a decision pinned now also releases that owner's lease as done."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        decision = make_decision(Route.LEGACY)
        assert ledger.pin_decision("o-1", decision, release_owner="a") is decision
        clock.advance(3600)
        assert (
            ledger.claim_due("b", limit=1, lease_seconds=10),
            ledger.counts().dispatch_queue,
        ) == (
            [],
            0,
        )

    def test_pinning_can_start_the_order_running(self, ledger: SqlLedger) -> None:
        """With start_running, a decision pinned now moves the order on to running too."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision(Route.INSTANT), start_running=True)
        story = ledger.story("o-1") or {}
        moves = [t["status"] for t in story["transitions"]]
        assert (story["status"], moves[-2:]) == ("running", ["routed", "running"])
        ledger.pin_decision("o-1", make_decision(), start_running=True)
        assert [t["status"] for t in (ledger.story("o-1") or {})["transitions"]] == moves

    def test_starting_records_both_transitions_at_the_pin_time(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """Routed and running share the pin's time; the decision's reason goes with routed."""
        ledger.record_received(make_order("o-1"), source="api")
        pinned_at = clock.advance(2)
        decision = make_decision(Route.INSTANT)
        ledger.pin_decision("o-1", decision, start_running=True)
        story = ledger.story("o-1") or {}
        assert story["transitions"][1:] == [
            {"status": "routed", "at": pinned_at.isoformat(), "reason": decision.reason},
            {"status": "running", "at": pinned_at.isoformat(), "reason": None},
        ]
        assert (story["timestamps"]["routed"], story["timestamps"]["running"]) == (
            pinned_at.isoformat(),
            pinned_at.isoformat(),
        )

    @pytest.mark.parametrize("reached", [OrderStatus.RUNNING, OrderStatus.FULFILLED])
    def test_starting_an_order_already_further_on_moves_it_no_way_back(
        self, ledger: SqlLedger, reached: OrderStatus
    ) -> None:
        """An order past ``received`` before its pin keeps its status; nothing is repeated."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.transition("o-1", reached)
        before = [t["status"] for t in (ledger.story("o-1") or {})["transitions"]]
        decision = make_decision(Route.INSTANT)
        assert ledger.pin_decision("o-1", decision, start_running=True) is decision
        story = ledger.story("o-1") or {}
        assert (story["status"], [t["status"] for t in story["transitions"]]) == (
            reached.value,
            before,
        )

    def test_finish_records_steps_ends_the_order_and_releases_the_lease_at_once(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """finish() is record_steps, a terminal transition and the lease's release, in one."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        ledger.pin_decision("o-1", make_decision(Route.INSTANT), start_running=True)
        steps = [(make_step(step="claim"), 0), (make_step(step="fraud_scan"), 0)]
        ended_at = clock.advance(5)
        assert ledger.finish("o-1", OrderStatus.FULFILLED, steps, at=ended_at, release_owner="a")
        again = ledger.finish("o-1", OrderStatus.FULFILLED, steps, at=ended_at, release_owner="a")
        story = ledger.story("o-1") or {}
        assert (again, story["status"], len(story["steps"])) == (False, "fulfilled", 2)
        assert story["timestamps"]["terminal"] == ended_at.isoformat()
        clock.advance(3600)
        assert (
            ledger.claim_due("b", limit=1, lease_seconds=10),
            ledger.counts().dispatch_queue,
        ) == (
            [],
            0,
        )

    def test_finish_leaves_another_owners_lease_alone(self, ledger: SqlLedger) -> None:
        """A worker that lost its lease still ends the order, but releases nothing of b's."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("b", limit=1, lease_seconds=10)
        ledger.finish("o-1", OrderStatus.FULFILLED, [], at=T0, release_owner="a")
        assert ledger.renew_leases("b", ["o-1"], lease_seconds=10) == {"o-1"}
        with pytest.raises(ValueError, match="not a terminal status"):
            ledger.finish("o-1", OrderStatus.RUNNING, [], at=T0, release_owner="b")

    def test_an_earlier_decision_releases_nothing(self, ledger: SqlLedger) -> None:
        """When a decision was pinned before, asking for a release leaves the lease held."""
        ledger.record_received(make_order("o-1"), source="api")
        first = make_decision(Route.INSTANT)
        ledger.pin_decision("o-1", first)
        ledger.claim_due("a", limit=1, lease_seconds=10)
        pinned = ledger.pin_decision("o-1", make_decision(Route.LEGACY), release_owner="a")
        assert (pinned, ledger.renew_leases("a", ["o-1"], lease_seconds=10)) == (first, {"o-1"})

    def test_unknown_orders_cannot_be_routed_or_moved(self, ledger: SqlLedger) -> None:
        """Pinning or moving an order the ledger does not have raises, naming the order."""
        with pytest.raises(LedgerError, match="ghost"):
            ledger.pin_decision("ghost", make_decision())
        with pytest.raises(LedgerError, match="ghost"):
            ledger.transition("ghost", OrderStatus.RUNNING)

    def test_statuses_only_move_forward(self, ledger: SqlLedger, clock: Clock) -> None:
        """A status already reached, or behind, changes nothing; terminal is final."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision())
        running_at = clock.advance(1)
        assert ledger.transition("o-1", OrderStatus.RUNNING) is True
        clock.advance(1)
        assert ledger.transition("o-1", OrderStatus.RUNNING) is False
        assert ledger.transition("o-1", OrderStatus.ROUTED) is False
        done_at = clock.advance(1)
        assert ledger.transition("o-1", OrderStatus.FULFILLED, reason="ok") is True
        assert ledger.transition("o-1", OrderStatus.FAILED) is False
        story = ledger.story("o-1")
        assert story is not None
        assert (story["status"], story["outcome"]) == ("fulfilled", "fulfilled")
        assert story["timestamps"]["running"] == running_at.isoformat()
        assert story["timestamps"]["terminal"] == done_at.isoformat()
        assert [t["status"] for t in story["transitions"]] == [
            "received",
            "routed",
            "running",
            "fulfilled",
        ]

    def test_a_transition_keeps_the_time_it_is_given(self, ledger: SqlLedger) -> None:
        """A terminal time reported by the legacy app is kept as the order's terminal time."""
        ledger.record_received(make_order("o-1"), source="api")
        reported = T0 + timedelta(minutes=14)
        ledger.transition("o-1", OrderStatus.REJECTED_FRAUD, at=reported)
        story = ledger.story("o-1")
        assert story is not None
        assert story["timestamps"]["terminal"] == reported.isoformat()

    @pytest.mark.parametrize("kind", list(Handoff), ids=[k.value for k in Handoff])
    def test_a_hand_off_records_its_kind_and_reason(self, ledger: SqlLedger, kind: Handoff) -> None:
        """Handing an order to the batch jobs moves it to fell_back with kind and reason."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision())
        assert ledger.hand_off("o-1", kind, reason="legacy down") is True
        assert ledger.hand_off("o-1", kind, reason="again") is False
        story = ledger.story("o-1")
        assert story is not None
        assert (story["status"], story["handoff"]) == ("fell_back", kind.value)
        assert story["transitions"][-1]["reason"] == "legacy down"
        assert ledger.counts().handoffs == {kind.value: 1}

    def test_instant_errors_count_each_order_once_as_the_gate_does(self, ledger: SqlLedger) -> None:
        """counts().instant_errors (the metrics' strangler_instant_errors) is the report's
        instant failed_or_fell_back: an order that fell back and then failed is one error."""
        ends = {
            "fell-back-then-failed": (OrderStatus.FELL_BACK, OrderStatus.FAILED),
            "fell-back-then-fulfilled": (OrderStatus.FELL_BACK, OrderStatus.FULFILLED),
            "failed": (OrderStatus.FAILED,),
            "fulfilled": (OrderStatus.FULFILLED,),
        }
        for order_id, moves in ends.items():
            ledger.record_received(make_order(order_id), source="api")
            ledger.pin_decision(order_id, make_decision())
            for status in moves:
                ledger.transition(order_id, status)
        ledger.record_received(make_order("legacy-failed"), source="api")
        ledger.pin_decision("legacy-failed", make_decision(Route.LEGACY))
        ledger.transition("legacy-failed", OrderStatus.FAILED)
        report = load_report(ledger.engine, until=T0 + timedelta(days=1), now=T0)

        assert ledger.counts().instant_errors == 3
        assert report.path("instant").failed_or_fell_back == 3

    # -- steps ------------------------------------------------------------------------------

    def test_recording_a_step_again_changes_nothing(self, ledger: SqlLedger) -> None:
        """A step is kept once per (order, path, step, dry_run, seq); the first record stays."""
        ledger.record_received(make_order("o-1"), source="api")
        assert ledger.record_step(make_step(decision="pass")) is True
        assert ledger.record_step(make_step(decision="reject")) is False
        assert ledger.record_step(make_step(decision="reject"), seq=1) is True
        assert ledger.record_step(make_step(decision="pass", dry_run=True)) is True
        story = ledger.story("o-1")
        assert story is not None
        assert [(s["seq"], s["dry_run"], s["decision"]) for s in story["steps"]] == [
            (0, False, "pass"),
            (0, True, "pass"),
            (1, False, "reject"),
        ]

    def test_steps_for_unknown_orders_are_refused(self, ledger: SqlLedger) -> None:
        """A step for an order the ledger does not have raises LedgerError."""
        with pytest.raises(LedgerError, match="could not record a step"):
            ledger.record_step(make_step("ghost"))

    def test_the_story_has_the_documented_shape(self, ledger: SqlLedger, clock: Clock) -> None:
        """The story carries the decision, one entry per step per path, and every transition."""
        ledger.record_received(make_order("o-1"), source="proxy")
        ledger.pin_decision("o-1", make_decision(Route.SHADOW))
        ledger.record_steps(
            [
                (make_step(path=Route.INSTANT, dry_run=True, at=T0), 0),
                (make_step(path=Route.LEGACY, at=T0 + timedelta(minutes=3)), 0),
            ]
        )
        ledger.transition("o-1", OrderStatus.FULFILLED, at=clock.advance(600))
        story = ledger.story("o-1")
        assert story is not None
        json.dumps(story)  # JSON-ready as it is
        assert set(story) >= {"order_id", "status", "decision", "steps", "timestamps"}
        assert set(story["decision"]) == {"path", "variant", "rollout", "flag_revision", "reason"}
        assert [(s["path"], s["dry_run"]) for s in story["steps"]] == [
            ("instant", True),
            ("legacy", False),
        ]
        assert set(story["steps"][0]) >= {
            "path",
            "step",
            "decision",
            "started_at",
            "finished_at",
            "error",
            "dry_run",
        }
        assert set(story["timestamps"]) == {
            "received",
            "routed",
            "running",
            "fell_back",
            "terminal",
        }
        assert ledger.story("unknown") is None

    # -- leases -----------------------------------------------------------------------------

    def test_a_due_order_is_claimed_by_one_owner(self, ledger: SqlLedger) -> None:
        """A claimed order is not handed to a second claimer while the lease holds."""
        ledger.record_received(make_order("o-1"), source="api")
        claimed = ledger.claim_due("a", limit=5, lease_seconds=30)
        assert [(o.order_id, o.lease_owner, o.attempts) for o in claimed] == [("o-1", "a", 1)]
        assert claimed[0].lease_expires_at == T0 + timedelta(seconds=30)
        assert ledger.claim_due("b", limit=5, lease_seconds=30) == []

    def test_an_expired_lease_is_taken_over(self, ledger: SqlLedger, clock: Clock) -> None:
        """After a lease expires another owner claims the order; the first loses it."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        clock.advance(11)
        stolen = ledger.claim_due("b", limit=1, lease_seconds=10)
        assert [(o.lease_owner, o.attempts) for o in stolen] == [("b", 2)]
        assert ledger.renew_leases("a", ["o-1"], lease_seconds=10) == set()
        assert ledger.release_lease("o-1", "a", done=True) is False
        assert ledger.renew_leases("b", ["o-1"], lease_seconds=10) == {"o-1"}

    def test_renewing_keeps_the_lease(self, ledger: SqlLedger, clock: Clock) -> None:
        """A renewed lease is not taken over at its first expiry time."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        clock.advance(8)
        ledger.renew_leases("a", ["o-1"], lease_seconds=10)
        clock.advance(8)
        assert ledger.claim_due("b", limit=1, lease_seconds=10) == []

    def test_a_done_order_leaves_the_queue(self, ledger: SqlLedger, clock: Clock) -> None:
        """Releasing a lease as done takes the order out of the dispatcher's queue."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        assert ledger.release_lease("o-1", "a", done=True) is True
        clock.advance(3600)
        assert ledger.claim_due("a", limit=1, lease_seconds=10) == []
        assert ledger.counts().dispatch_queue == 0

    def test_a_retry_waits_until_its_time(self, ledger: SqlLedger, clock: Clock) -> None:
        """An order released for a retry is due again at its retry time, with its error."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        ledger.release_lease(
            "o-1", "a", done=False, retry_at=T0 + timedelta(seconds=5), error="legacy down"
        )
        assert ledger.claim_due("a", limit=1, lease_seconds=10) == []
        clock.advance(5)
        [again] = ledger.claim_due("a", limit=1, lease_seconds=10)
        assert (again.attempts, again.last_error) == (2, "legacy down")

    def test_unstarted_claims_are_given_back_uncounted(self, ledger: SqlLedger) -> None:
        """Claims returned before any work are due again at once, their attempt undone;
        another owner's claims are left alone."""
        for n in range(3):
            ledger.record_received(make_order(f"o-{n}"), source="api")
        ledger.claim_due("a", limit=2, lease_seconds=30)
        ledger.claim_due("b", limit=1, lease_seconds=30)
        assert ledger.return_unstarted("a", ["o-0", "o-1", "o-2"]) == 2
        assert ledger.return_unstarted("a", []) == 0
        again = ledger.claim_due("c", limit=5, lease_seconds=30)
        assert [(o.order_id, o.attempts) for o in again] == [("o-0", 1), ("o-1", 1)]
        assert ledger.renew_leases("b", ["o-2"], lease_seconds=30) == {"o-2"}

    def test_claims_come_oldest_first_up_to_the_limit(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """Claims take the longest-waiting orders first and no more than asked."""
        for n in range(5):
            ledger.record_received(make_order(f"o-{n}"), source="api")
            clock.advance(1)
        claimed = ledger.claim_due("a", limit=3, lease_seconds=10)
        assert [o.order_id for o in claimed] == ["o-0", "o-1", "o-2"]
        assert ledger.claim_due("a", limit=0, lease_seconds=10) == []

    def test_concurrent_claimers_never_share_an_order(self, ledger: SqlLedger) -> None:
        """Claimers on several threads together claim every order exactly once."""
        for n in range(60):
            ledger.record_received(make_order(f"o-{n}"), source="api")
        claims: dict[str, list[str]] = {}
        lock = threading.Lock()

        def claim(owner: str) -> None:
            while batch := ledger.claim_due(owner, limit=3, lease_seconds=60):
                with lock:
                    for order in batch:
                        claims.setdefault(order.order_id, []).append(owner)

        threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(claims) == sorted(f"o-{n}" for n in range(60))
        assert {
            order_id: len(owners) for order_id, owners in claims.items() if len(owners) > 1
        } == {}

    def test_a_leased_order_carries_its_pinned_decision(self, ledger: SqlLedger) -> None:
        """A resumed order comes back with the decision pinned before, not a new one."""
        ledger.record_received(make_order("o-1", city="Austin"), source="api")
        decision = make_decision(Route.SHADOW)
        ledger.pin_decision("o-1", decision)
        [leased] = ledger.claim_due("a", limit=1, lease_seconds=10)
        assert (leased.decision, leased.status) == (decision, OrderStatus.ROUTED)
        assert leased.notification == make_order("o-1", city="Austin")

    # -- the follower's queue ------------------------------------------------------------------

    def test_followed_orders_are_legacy_shadow_and_handed_off(self, ledger: SqlLedger) -> None:
        """The follower tracks legacy, shadow and handed-off orders that are not terminal."""
        for order_id, path in [
            ("legacy", Route.LEGACY),
            ("shadow", Route.SHADOW),
            ("instant", Route.INSTANT),
            ("handed", Route.INSTANT),
            ("done", Route.LEGACY),
        ]:
            ledger.record_received(make_order(order_id), source="api")
            ledger.pin_decision(order_id, make_decision(path))
        ledger.record_received(make_order("undecided"), source="api")
        ledger.hand_off("handed", Handoff.FALLBACK, reason="down")
        ledger.transition("done", OrderStatus.FULFILLED)
        every = ["legacy", "shadow", "instant", "handed", "done", "undecided", "unknown"]
        assert ledger.followed_open(every) == {"legacy", "shadow", "handed"}

    def test_legacy_progress_is_recorded_with_its_time(self, ledger: SqlLedger) -> None:
        """Legacy steps and the terminal status are recorded in one go, with legacy's time."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision(Route.LEGACY))
        at = T0 + timedelta(minutes=20)
        step = make_step(path=Route.LEGACY, step="fulfill", decision="fulfilled", at=at)
        assert ledger.record_legacy_progress(
            "o-1", [(step, 0)], legacy_status="fulfilled", legacy_terminal_at=at
        )
        assert not ledger.record_legacy_progress(
            "o-1", [(step, 0)], legacy_status="fulfilled", legacy_terminal_at=at
        )
        story = ledger.story("o-1")
        assert story is not None
        assert (story["status"], story["timestamps"]["terminal"]) == ("fulfilled", at.isoformat())
        assert story["transitions"][-1]["reason"] == "legacy app reports fulfilled"
        assert len(story["steps"]) == 1
        assert ledger.open_orders(["o-1"]) == set()

    def test_an_order_legacy_finished_before_routing_ends_when_routed(
        self, ledger: SqlLedger
    ) -> None:
        """An order the batch jobs finished before it was routed to them ends once it is."""
        ledger.record_received(make_order("o-1"), source="api")
        at = T0 + timedelta(minutes=3)
        ended = ledger.record_legacy_progress(
            "o-1", [], legacy_status="rejected_fraud", legacy_terminal_at=at
        )
        assert ended is False
        assert ledger.open_orders(["o-1", "ghost"]) == {"o-1"}
        ledger.pin_decision("o-1", make_decision(Route.LEGACY))
        story = ledger.story("o-1")
        assert story is not None
        assert (story["status"], story["timestamps"]["terminal"]) == (
            "rejected_fraud",
            at.isoformat(),
        )

    def test_an_instant_order_ends_as_legacy_did_once_handed_off(self, ledger: SqlLedger) -> None:
        """Legacy's outcome waits for an instant order until it is handed to the batch jobs."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.pin_decision("o-1", make_decision(Route.INSTANT))
        ledger.record_legacy_progress("o-1", [], legacy_status="fulfilled", legacy_terminal_at=T0)
        assert ledger.story("o-1")["status"] == "routed"  # type: ignore[index]
        ledger.hand_off("o-1", Handoff.LEGACY_OWNED, reason="claim lost")
        story = ledger.story("o-1")
        assert story is not None
        assert [t["status"] for t in story["transitions"]][-2:] == ["fell_back", "fulfilled"]
        assert story["legacy_status"] == "fulfilled"

    def test_stale_followed_orders_are_found(self, ledger: SqlLedger, clock: Clock) -> None:
        """Followed orders never seen, then those not seen for long, least recently first."""
        for order_id in ("seen", "unseen", "instant"):
            ledger.record_received(make_order(order_id), source="api")
            ledger.pin_decision(order_id, make_decision(Route.LEGACY))
        ledger.transition("instant", OrderStatus.FULFILLED)
        clock.advance(60)
        ledger.mark_checked(["seen"])
        half_way = T0 + timedelta(seconds=30)
        assert ledger.stale_followed(never_seen_before=half_way, seen_before=T0, limit=10) == [
            "unseen"
        ]
        assert ledger.stale_followed(never_seen_before=T0, seen_before=half_way, limit=10) == []
        much_later = clock.advance(60)
        assert ledger.stale_followed(
            never_seen_before=much_later, seen_before=much_later, limit=10
        ) == ["unseen", "seen"]

    def test_a_role_is_held_by_one_owner_at_a_time(self, ledger: SqlLedger, clock: Clock) -> None:
        """A role is kept by its holder, refused to others, and free after expiry or give-up."""
        assert ledger.hold_role("follower", "a", seconds=10) is True
        assert ledger.hold_role("follower", "b", seconds=10) is False
        clock.advance(8)
        assert ledger.hold_role("follower", "a", seconds=10) is True
        clock.advance(9)
        assert ledger.hold_role("follower", "b", seconds=10) is False
        clock.advance(1)
        assert ledger.hold_role("follower", "b", seconds=10) is True
        ledger.give_up_role("follower", "a")  # not a's any more: nothing happens
        assert ledger.hold_role("follower", "a", seconds=10) is False
        ledger.give_up_role("follower", "b")
        assert ledger.hold_role("follower", "a", seconds=10) is True

    def test_values_are_kept_last_write_wins(self, ledger: SqlLedger) -> None:
        """A stored value (the follower's cursor) reads back as last written."""
        assert ledger.get_value("cursor") is None
        ledger.set_value("cursor", "one")
        ledger.set_value("cursor", "two")
        assert ledger.get_value("cursor") == "two"

    # -- reads, events, health -------------------------------------------------------------

    def test_counts_group_orders_by_path_and_status(self, ledger: SqlLedger) -> None:
        """Counts give orders per path and status, the backlog and the dispatch queue."""
        for n, path in enumerate([Route.INSTANT, Route.INSTANT, Route.LEGACY]):
            ledger.record_received(make_order(f"o-{n}"), source="api")
            ledger.pin_decision(f"o-{n}", make_decision(path))
        ledger.record_received(make_order("new"), source="api")
        ledger.transition("o-0", OrderStatus.FULFILLED)
        counts = ledger.counts()
        assert dict(counts.by_path_status) == {
            ("instant", "fulfilled"): 1,
            ("instant", "routed"): 1,
            ("legacy", "routed"): 1,
            ("undecided", "received"): 1,
        }
        assert (counts.total, counts.backlog, ledger.backlog()) == (4, 3, 3)

    def test_rollout_events_are_kept_once_in_order(self, ledger: SqlLedger) -> None:
        """Rollout changes read back oldest first; the same change recorded twice is kept once."""
        later = RolloutEvent(T0 + timedelta(hours=1), "ops", 10, 25, "healthy", "rev-3")
        first = RolloutEvent(T0, "ops", None, 10, "start", "rev-2")
        assert ledger.record_rollout_event(later) is True
        assert ledger.record_rollout_event(first) is True
        assert ledger.record_rollout_event(later) is False
        assert ledger.rollout_events() == [first, later]

    def test_a_read_snapshot_lets_writes_through_and_keeps_its_view(
        self, ledger: SqlLedger
    ) -> None:
        """A write commits while a read snapshot is open; the snapshot keeps the state it saw."""
        ledger.record_received(make_order("o-1"), source="test")
        count = sa.select(sa.func.count()).select_from(schema.orders)
        with read_snapshot(ledger.engine) as conn:
            before = conn.execute(count).scalar_one()
            written = ledger.record_received(make_order("o-2"), source="test")
            during = conn.execute(count).scalar_one()
        assert (before, written, during, ledger.counts().total) == (1, True, 1, 2)

    def test_a_report_runs_in_a_read_snapshot(self, ledger: SqlLedger) -> None:
        """The report takes no write lock: an intake commits while its snapshot is open."""
        ledger.record_received(make_order("o-1"), source="test")
        written: list[bool] = []
        begun: list[bool] = []

        def intake_midway(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            # Once: the intake's own statements (a SELECT on PostgreSQL) come here too.
            if not begun and statement.lstrip().upper().startswith("SELECT"):
                begun.append(True)
                written.append(ledger.record_received(make_order("o-2"), source="test"))

        sa.event.listen(ledger.engine, "after_cursor_execute", intake_midway)
        try:
            load_report(ledger.engine)
        finally:
            sa.event.remove(ledger.engine, "after_cursor_execute", intake_midway)
        assert (written, ledger.counts().total) == ([True], 2)

    def test_probe_reads(self, ledger: SqlLedger) -> None:
        """The readiness probe is a read: it answers while a writer holds the ledger elsewhere."""
        with ledger.engine.begin() as writer:
            writer.execute(schema.kv.insert().values(name="held", value="1", updated_at=T0))
            ledger.probe()

    @pytest.mark.parametrize(
        ("start_us", "end_us"),
        [
            (999_500, 50_000),
            (999_999, 999_500),
            (999_700, 0),
            (0, 999_999),
            (999_999, 999_999),
        ],
        ids=["start-.9995", "start-.999999", "start-.9997-end-whole", "end-.999999", "both-max"],
    )
    def test_durations_are_exact_at_fractions_near_a_whole_second(
        self, ledger: SqlLedger, start_us: int, end_us: int
    ) -> None:
        """Received-to-terminal seconds are exact to the microsecond at .9995-.999999 s."""
        received = T0.replace(microsecond=start_us)
        terminal = T0.replace(microsecond=end_us) + timedelta(seconds=3)
        ledger.record_received(make_order("edge"), source="api")
        orders = schema.orders
        seconds = seconds_between(
            ledger.engine.dialect.name, orders.c.received_at, orders.c.terminal_at
        )
        with ledger.engine.begin() as conn:
            conn.execute(orders.update().values(received_at=received, terminal_at=terminal))
            measured = conn.execute(sa.select(seconds)).scalar_one()
        expected = (terminal - received).total_seconds()
        assert round(expected, 6) == round(measured, 6)

    def test_the_report_and_metrics_agree_on_seconds_to_terminal(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """The report and /metrics count the same orders with the same seconds to terminal.

        Times sit just under shared bucket edges (0.1, 0.5, 1, 5, 10 s) and start at
        fractions SQLite's date functions round (.9995 s), where two definitions would
        put an order on different sides of an edge.
        """
        took = {
            Route.INSTANT: [0.099999, 0.2, 0.9995, 2.5, 4.999999, 7.25],
            Route.LEGACY: [0.000999, 0.499999, 9.999999, 61.0, 900.5],
        }
        for path, seconds in took.items():
            for n, duration in enumerate(seconds):
                order_id = f"{path.value}-{n}"
                received = clock.advance(0.9995)
                ledger.record_received(make_order(order_id), source="api")
                ledger.pin_decision(order_id, make_decision(path))
                ledger.transition(
                    order_id, OrderStatus.FULFILLED, at=received + timedelta(seconds=duration)
                )
        report = ledger.report(until=T0 + timedelta(days=1), now=T0 + timedelta(days=1))
        samples = _scrape(OrderDurations(ledger))
        for path, seconds in took.items():
            times = report.path(path.value).times
            assert (times.count, times.max) == (len(seconds), pytest.approx(max(seconds), abs=1e-6))
            assert samples["_count", path.value, None] == times.count
            assert samples["_sum", path.value, None] == pytest.approx(sum(seconds), abs=1e-5)
            for edge in (0.1, 0.5, 1.0, 5.0, 10.0):
                under = sum(b.orders for b in report.path(path.value).histogram if b.high_s <= edge)
                assert (edge, samples["_bucket", path.value, edge]) == (edge, under)

    def test_ping_writes(self, ledger: SqlLedger, clock: Clock) -> None:
        """A ping is a real write."""
        ledger.ping()
        assert ledger.get_value("ping") == clock().isoformat()

    def test_database_errors_become_ledger_errors(self, ledger: SqlLedger) -> None:
        """A failing database raises LedgerError naming the operation, never SQLAlchemy's."""
        with ledger.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE kv"))
        with pytest.raises(LedgerError, match="could not write a value") as caught:
            ledger.ping()
        # SQLite writes run on the driver (strangler.ledger.driver); PostgreSQL through SQLAlchemy.
        assert isinstance(caught.value.__cause__, sa.exc.SQLAlchemyError | sqlite3.Error)
        assert (caught.value.operation, caught.value.url) == ("write a value", ledger.url)

    # -- transitions the orders row holds (v5: strangler.ledger.moves) --------------------

    def test_the_instant_path_writes_no_transitions_row_the_orders_row_holds(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """Pin-and-start and finish leave the table empty; the story tells every move."""
        ledger.record_received(make_order("o-1"), source="api")
        ledger.claim_due("a", limit=1, lease_seconds=10)
        pinned_at = clock.advance(2)
        decision = make_decision(Route.INSTANT)
        ledger.pin_decision("o-1", decision, start_running=True)
        ended_at = clock.advance(3)
        steps = [(make_step(step="fraud_scan"), 0)]
        assert ledger.finish("o-1", OrderStatus.FULFILLED, steps, at=ended_at, release_owner="a")
        assert _transition_rows(ledger) == []
        assert (ledger.story("o-1") or {})["transitions"] == [
            {"status": "received", "at": T0.isoformat(), "reason": None},
            {"status": "routed", "at": pinned_at.isoformat(), "reason": decision.reason},
            {"status": "running", "at": pinned_at.isoformat(), "reason": None},
            {"status": "fulfilled", "at": ended_at.isoformat(), "reason": None},
        ]

    def test_a_ledger_with_the_rows_v4_wrote_reads_the_same(
        self, ledger: SqlLedger, clock: Clock
    ) -> None:
        """The rows v4 wrote for the moves the orders row holds change no answer: the
        stories, the report, the counts and the archive records (ids aside) stay equal."""
        order_ids = _orders_down_every_path(ledger, clock)
        before = _answers(ledger, order_ids)
        kept = _transition_rows(ledger)
        assert ("legacy", "routed") in {(order_id, status) for order_id, status, _ in kept}
        assert ("instant", "routed") not in {(order_id, status) for order_id, status, _ in kept}
        with ledger.engine.begin() as conn:
            for status, at, reason in (
                ("'routed'", "routed_at", "decision_reason"),
                ("'running'", "running_at", "NULL"),
                ("status", "terminal_at", "NULL"),  # the terminal status the order reached
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO transitions (order_id, status, at, reason)"  # noqa: S608
                        f" SELECT order_id, {status}, {at}, {reason} FROM orders"
                        f" WHERE {at} IS NOT NULL ON CONFLICT (order_id, status) DO NOTHING"
                    )
                )
        assert len(_transition_rows(ledger)) > len(kept)
        assert _answers(ledger, order_ids) == before

    def test_a_v4_ledger_upgrades_with_its_transitions_intact(
        self, ledger: SqlLedger, ledger_url: str, clock: Clock
    ) -> None:
        """Migrating v4 to v5 keeps every row; the orders read as before."""
        order_ids = _orders_down_every_path(ledger, clock)
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO transitions (order_id, status, at, reason) SELECT order_id,"
                    " 'routed', routed_at, decision_reason FROM orders WHERE routed_at IS NOT"
                    " NULL ON CONFLICT (order_id, status) DO NOTHING"
                )
            )
            conn.execute(schema_version.update().values(version=4))
        rows, before = _transition_rows(ledger), _answers(ledger, order_ids)
        ledger.close()
        again = ledger_from_url(ledger_url, clock=clock)
        try:
            assert again.schema_version == SCHEMA_VERSION == 5
            with again.engine.connect() as conn:
                versions = conn.execute(sa.select(schema_version.c.version)).scalars().all()
            assert sorted(versions) == [4, 5]
            assert (_transition_rows(again), _answers(again, order_ids)) == (rows, before)
        finally:
            again.close()


def _orders_down_every_path(ledger: SqlLedger, clock: Clock) -> list[str]:
    """Orders ended by the instant path, fallen back, legacy-run, and one still running."""
    for order_id in ("instant", "failed", "fell-back", "legacy", "running"):
        ledger.record_received(make_order(order_id), source="api")
    ledger.claim_due("a", limit=5, lease_seconds=60)
    clock.advance(1)
    for order_id in ("instant", "failed", "fell-back", "running"):
        ledger.pin_decision(order_id, make_decision(Route.INSTANT), start_running=True)
    ledger.pin_decision("legacy", make_decision(Route.LEGACY), release_owner="a")
    ended_at = clock.advance(2)
    for order_id, status in (("instant", OrderStatus.FULFILLED), ("failed", OrderStatus.FAILED)):
        steps = [(make_step(order_id, step="fraud_scan", error=None), 0)]
        ledger.finish(order_id, status, steps, at=ended_at, release_owner="a")
    ledger.hand_off("fell-back", Handoff.FALLBACK, reason="legacy down")
    for order_id in ("fell-back", "legacy"):
        step = make_step(order_id, path=Route.LEGACY, step="fulfill", decision="fulfilled")
        ledger.record_legacy_progress(
            order_id, [(step, 0)], legacy_status="fulfilled", legacy_terminal_at=clock.advance(1)
        )
    return ["instant", "failed", "fell-back", "legacy", "running"]


def _answers(ledger: SqlLedger, order_ids: list[str]) -> dict[str, Any]:
    """What the ledger's readers answer about these orders (archive ids left out)."""
    records = ledger.archive_records(order_ids)
    for record in records:
        record["transitions"] = [
            {k: v for k, v in move.items() if k != "id"} for move in record["transitions"]
        ]
    return {
        "stories": [ledger.story(order_id) for order_id in order_ids],
        "report": load_report(ledger.engine, until=T0 + timedelta(days=1), now=T0),
        "counts": ledger.counts(),
        "archive": records,
    }


def _transition_rows(ledger: SqlLedger) -> list[tuple[str, str, Any]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT order_id, status, at FROM transitions ORDER BY id"))
        return [tuple(row) for row in rows]


def _scrape(collector: OrderDurations) -> dict[tuple[str, str, float | None], float]:
    """The histogram's samples by suffix (``_count``...), path and bucket bound."""
    registry = CollectorRegistry()
    registry.register(collector)
    samples: dict[tuple[str, str, float | None], float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            le = sample.labels.get("le")
            suffix = sample.name.removeprefix(family.name)
            samples[suffix, sample.labels["path"], None if le is None else float(le)] = sample.value
    return samples
