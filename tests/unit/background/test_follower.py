"""The legacy follower: batch-job progress of followed orders, cursor, reconcile, outages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from strangler.background.follower import CURSOR_KEY, ROLE, Follower, legacy_steps
from strangler.ledger import Handoff, SqlLedger
from strangler.ledger.ops_queries import HEARTBEAT_KEYS
from strangler.legacy_adapter import LegacyClient
from strangler.legacy_adapter.exceptions import LegacyProtocolError, LegacyUnavailable
from strangler.orders import Route
from tests.helpers import wait_until
from tests.legacy_http import LegacyHTTPMock
from tests.unit.ledger.support import T0, Clock, make_decision, make_order
from tests.unit.legacy_adapter.payloads import BASE, order_json
from tests.unit.routing.fakes import BATCH_FULFILLED, FakeLegacy, legacy_order

LATER = T0 + timedelta(minutes=15)


@pytest.fixture
def legacy() -> FakeLegacy:
    return FakeLegacy()


def follower(ledger: SqlLedger, legacy: FakeLegacy, clock: Clock, **options: float) -> Follower:
    return Follower(ledger, legacy, clock=clock, **options)  # type: ignore[arg-type]


def routed(ledger: SqlLedger, order_id: str, path: Route) -> None:
    ledger.record_received(make_order(order_id), source="api")
    ledger.pin_decision(order_id, make_decision(path))


def test_batch_steps_and_the_terminal_status_are_recorded(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """A followed order gets the batch jobs' steps and legacy's terminal status and time."""
    routed(ledger, "o-1", Route.LEGACY)
    legacy.put(legacy_order("o-1", "fulfilled", updated_at=LATER, history=BATCH_FULFILLED))
    assert follower(ledger, legacy, clock).poll_once() == 1
    told = ledger.story("o-1")
    assert told is not None
    assert (told["status"], told["timestamps"]["terminal"]) == ("fulfilled", LATER.isoformat())
    assert [(s["path"], s["step"], s["decision"]) for s in told["steps"]] == [
        ("legacy", "fraud_scan", "pass"),
        ("legacy", "authorize_payment", "authorized"),
        ("legacy", "fulfill", "fulfilled"),
    ]
    assert told["steps"][0]["finished_at"] == (LATER - timedelta(minutes=3)).isoformat()


def test_only_the_batch_jobs_steps_are_legacy_steps() -> None:
    """Steps the per-order API did (the instant path's) are left out; retries are numbered."""
    order = legacy_order(
        "o-1",
        "rejected_fraud",
        updated_at=LATER,
        history=[
            ("fraud_scan", "api", None),
            ("fraud_scan", "batch", None),
            ("fraud_scan", "batch", "reject"),
        ],
    )
    steps = [(step.step, step.decision, step.error, seq) for step, seq in legacy_steps(order)]
    assert steps == [("fraud_scan", None, "job error", 0), ("fraud_scan", "reject", None, 1)]


def test_instant_orders_are_left_to_the_router(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """An instant order the per-order API ran keeps its status; unknown orders are ignored."""
    routed(ledger, "instant", Route.INSTANT)
    api_steps = [(step, "api", decision) for step, _, decision in BATCH_FULFILLED]
    legacy.put(legacy_order("instant", updated_at=LATER, history=api_steps, mode="instant"))
    legacy.put(legacy_order("stranger", updated_at=LATER, history=BATCH_FULFILLED))
    follower(ledger, legacy, clock).poll_once()
    told = ledger.story("instant")
    assert told is not None
    assert (told["status"], told["steps"], told["legacy_status"]) == ("routed", [], "fulfilled")
    assert ledger.story("stranger") is None


@pytest.mark.parametrize(
    ("path", "handoff"),
    [
        (Route.SHADOW, None),
        (Route.INSTANT, Handoff.FALLBACK),
        (Route.INSTANT, Handoff.LEGACY_OWNED),
    ],
    ids=["shadow", "fell-back", "legacy-owned"],
)
def test_shadow_and_handed_off_orders_are_followed_to_the_end(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock, path: Route, handoff: Handoff | None
) -> None:
    """Shadow orders and instant orders handed to the batch jobs end with legacy's outcome."""
    routed(ledger, "o-1", path)
    if handoff is not None:
        ledger.hand_off("o-1", handoff, reason="test")
    legacy.put(legacy_order("o-1", "payment_declined", updated_at=LATER))
    follower(ledger, legacy, clock).poll_once()
    told = ledger.story("o-1")
    assert told is not None
    assert (told["status"], told["outcome"]) == ("payment_declined", "payment_declined")


def test_the_cursor_survives_a_restart(ledger: SqlLedger, legacy: FakeLegacy, clock: Clock) -> None:
    """A new follower asks the legacy app from where the last one stopped."""
    routed(ledger, "o-1", Route.LEGACY)
    legacy.put(legacy_order("o-1", "authorized", updated_at=LATER))
    follower(ledger, legacy, clock).poll_once()
    follower(ledger, legacy, clock).poll_once()
    assert legacy.polls == [None, LATER]
    assert ledger.get_value(CURSOR_KEY) == LATER.isoformat()


def test_full_pages_are_drained_in_one_poll(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """When a page comes back full, the follower asks for the next one straight away."""
    for n in range(5):
        routed(ledger, f"o-{n}", Route.LEGACY)
        legacy.put(legacy_order(f"o-{n}", updated_at=LATER + timedelta(seconds=n)))
    follower(ledger, legacy, clock, batch_limit=2).poll_once()
    assert ledger.backlog() == 0
    # updated_since is inclusive: each page starts with the last order of the one before.
    assert legacy.polls == [None, *(LATER + timedelta(seconds=n) for n in range(1, 5))]


def test_stale_orders_are_fetched_one_by_one(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """A followed order the bulk poll never showed is fetched on its own, once."""
    routed(ledger, "missed", Route.LEGACY)
    routed(ledger, "unknown", Route.LEGACY)
    legacy.put(legacy_order("missed", "fulfilled", updated_at=T0 - timedelta(hours=1)))
    legacy.polls.clear()
    tracker = follower(ledger, legacy, clock, first_look_after_s=30)
    tracker.look_up_stale()
    assert legacy.fetched == []
    clock.advance(31)
    tracker.look_up_stale()
    tracker.look_up_stale()
    assert sorted(legacy.fetched) == ["missed", "unknown"]
    missed, unknown = ledger.story("missed"), ledger.story("unknown")
    assert missed is not None
    assert unknown is not None
    assert (missed["status"], unknown["status"]) == ("fulfilled", "routed")
    assert unknown["last_error"] == "the legacy app does not know it"


def test_a_legacy_outage_is_waited_out(ledger: SqlLedger, legacy: FakeLegacy) -> None:
    """The background follower backs off while legacy is down, logs it, and carries on."""
    routed(ledger, "o-1", Route.LEGACY)
    legacy.put(legacy_order("o-1", updated_at=LATER))
    legacy.poll_errors = [LegacyUnavailable("legacy app timed out")] * 3
    tracker = Follower(ledger, legacy, interval_s=0.01, max_backoff_s=0.03)
    with capture_logs() as logs:
        tracker.start()
        try:
            wait_until(lambda: ledger.backlog() == 0, 10, "the order to be followed to the end")
        finally:
            assert tracker.stop(5) is True
    outages = [event for event in logs if event["event"] == "legacy_unavailable"]
    assert [event["retry_in_s"] for event in outages] == [0.01, 0.02, 0.03]


def test_one_follower_at_a_time_polls(ledger: SqlLedger, legacy: FakeLegacy) -> None:
    """Of two followers on one ledger, one polls; the other takes over when it stops."""
    first = Follower(ledger, legacy, interval_s=0.01, owner="first", role_seconds=5)
    second = Follower(ledger, legacy, interval_s=0.01, owner="second", role_seconds=5)
    first.start()
    wait_until(lambda: len(legacy.polls) >= 3, 5, "the first follower to poll")
    second.start()
    try:
        polls = len(legacy.polls)
        wait_until(lambda: len(legacy.polls) >= polls + 5, 5, "more polls")
        assert ledger.hold_role(ROLE, "someone", seconds=5) is False
        assert first.stop(5) is True
        polls = len(legacy.polls)
        wait_until(lambda: len(legacy.polls) >= polls + 5, 5, "the second follower to poll")
    finally:
        assert second.stop(5) is True
    assert ledger.hold_role(ROLE, "someone", seconds=5) is True


def test_a_successful_poll_is_noted_for_metrics(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """The heartbeat is written after a poll that succeeded, and not after one that failed."""
    legacy.poll_errors = [LegacyUnavailable("legacy app timed out")]
    polls = follower(ledger, legacy, clock)
    with pytest.raises(LegacyUnavailable):
        polls.poll_once()
    before = ledger.get_value(HEARTBEAT_KEYS["follower"])
    polls.poll_once()

    assert (before, ledger.get_value(HEARTBEAT_KEYS["follower"])) == (None, T0.isoformat())


def test_a_sighting_already_recorded_is_not_written_again(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk poll shows an order again each time the legacy app touches it: an
    unchanged sighting costs no write, a changed one is written and ends the order."""
    written: list[str] = []
    record = ledger.record_legacy_progress

    def counted(order_id: str, *args: object, **kwargs: object) -> bool:
        written.append(order_id)
        return record(order_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "record_legacy_progress", counted)
    routed(ledger, "o-1", Route.INSTANT)
    ledger.hand_off("o-1", Handoff.FALLBACK, reason="test")
    polling = follower(ledger, legacy, clock)
    legacy.put(legacy_order("o-1", "authorized", updated_at=LATER))
    polling.poll_once()
    legacy.put(legacy_order("o-1", "authorized", updated_at=LATER + timedelta(seconds=1)))
    polling.poll_once()
    polling.poll_once()
    assert (written, polling.writes) == (["o-1"], 1)
    story = ledger.story("o-1")
    assert story is not None
    assert story["legacy_status"] == "authorized"
    legacy.put(
        legacy_order(
            "o-1", "fulfilled", updated_at=LATER + timedelta(seconds=2), history=BATCH_FULFILLED
        )
    )
    polling.poll_once()
    assert written == ["o-1", "o-1"]
    told = ledger.story("o-1")
    assert told is not None
    assert (told["status"], len(told["steps"])) == ("fulfilled", 3)


def test_another_follower_writes_what_it_sees(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """What one follower recorded does not stop another (a new holder of the role, a
    restart) from recording its own first sighting."""
    routed(ledger, "o-1", Route.LEGACY)
    legacy.put(legacy_order("o-1", "authorized", updated_at=LATER))
    first, second = follower(ledger, legacy, clock), follower(ledger, legacy, clock)
    first.poll_once()
    first.poll_once()
    second.poll_once()
    assert (first.writes, second.writes) == (1, 1)


def test_only_the_orders_the_ledger_has_open_are_built(
    ledger: SqlLedger, legacy: FakeLegacy, clock: Clock
) -> None:
    """The bulk poll shows every order the legacy app touched; the follower builds (parses)
    only those the ledger has open, never one it does not know or has ended."""
    routed(ledger, "followed", Route.LEGACY)
    routed(ledger, "ending", Route.LEGACY)
    legacy.put(legacy_order("followed", "authorized", updated_at=LATER))
    legacy.put(legacy_order("ending", updated_at=LATER, history=BATCH_FULFILLED))
    legacy.put(legacy_order("stranger", updated_at=LATER))
    polling = follower(ledger, legacy, clock)
    polling.poll_once()
    first = sorted(legacy.built)
    for order_id in ("followed", "ending", "stranger"):
        legacy.put(legacy_order(order_id, "authorized", updated_at=LATER + timedelta(seconds=1)))
    polling.poll_once()
    assert (first, legacy.built[2:]) == (["ending", "followed"], ["followed"])
    assert ledger.backlog() == 1


@pytest.fixture
def mocked() -> Iterator[LegacyHTTPMock]:
    """A legacy app whose answers the test registers (a real LegacyClient asks it)."""
    with LegacyHTTPMock() as mock:
        yield mock


def listing_of(mocked: LegacyHTTPMock, *orders: dict[str, Any]) -> LegacyClient:
    """A client of a legacy app whose listing (GET /orders) answers ``orders``."""
    mocked.get(f"{BASE}/orders", json={"orders": list(orders), "has_more": False})
    return LegacyClient(BASE, token="t")


def test_a_malformed_order_nobody_follows_does_not_stop_the_pass(
    ledger: SqlLedger, clock: Clock, mocked: LegacyHTTPMock
) -> None:
    """An order that breaks the contract but that the ledger does not follow is skipped
    unparsed: the followed orders on its page are recorded and the cursor moves on."""
    routed(ledger, "o-1", Route.LEGACY)
    broken = order_json(order_id="stranger", status=7, history=[{"step": "fulfill"}])
    done = order_json(order_id="o-1", status="fulfilled", updated_at="2025-01-31T12:00:02Z")
    with listing_of(mocked, broken, done) as legacy:
        assert Follower(ledger, legacy, clock=clock).poll_once() == 2
    told = ledger.story("o-1")
    assert told is not None
    assert (told["status"], ledger.get_value(CURSOR_KEY)) == (
        "fulfilled",
        "2025-01-31T12:00:02+00:00",
    )


def test_a_malformed_followed_order_fails_the_pass_before_the_cursor_moves(
    ledger: SqlLedger, clock: Clock, mocked: LegacyHTTPMock
) -> None:
    """A followed order that breaks the contract is not skipped: the pass fails naming the
    field, the cursor stays, and the next pass reads the page again."""
    routed(ledger, "o-1", Route.LEGACY)
    broken = order_json(order_id="o-1", status=7)
    with listing_of(mocked, broken) as legacy, pytest.raises(LegacyProtocolError, match="'status'"):
        Follower(ledger, legacy, clock=clock).poll_once()
    told = ledger.story("o-1")
    assert told is not None
    assert (told["status"], ledger.get_value(CURSOR_KEY)) == ("routed", None)
