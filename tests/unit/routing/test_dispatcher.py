"""The dispatcher: a worker pool under leases that resumes, shares and stops cleanly."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path as FsPath
from typing import Any

import pytest
from structlog.testing import capture_logs

from strangler.exceptions import LedgerError
from strangler.instant.local_backend import LocalBackend
from strangler.ledger import LeasedOrder, SqlLedger, ledger_from_url
from strangler.ledger.engine import create_ledger_engine
from strangler.legacy_adapter import LegacyUnavailable, StepOutcome
from strangler.orders import OrderNotification, OrderStatus, Route
from strangler.routing.dispatcher import LeaseDispatcher
from strangler.routing.router import DONE, Disposition, Lease, Parked, RetryPolicy, Router
from tests.helpers import wait_until
from tests.unit.instant.fakes import FakeLegacy as InstantFakeLegacy
from tests.unit.ledger.support import make_order
from tests.unit.ledger.test_claim_pins import Statements
from tests.unit.routing.fakes import FakeFlags, FakeInstant, FakeLegacy

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def ledger(tmp_path: FsPath) -> Iterator[SqlLedger]:
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


@pytest.fixture
def instant() -> FakeInstant:
    return FakeInstant()


@pytest.fixture
def router(ledger: SqlLedger, instant: FakeInstant) -> Router:
    return Router(ledger, FakeFlags(), FakeLegacy(), instant, retry=FAST_RETRY)


@pytest.fixture
def dispatchers() -> Iterator[list[LeaseDispatcher]]:
    """Dispatchers a test starts; each is stopped at the end."""
    started: list[LeaseDispatcher] = []
    yield started
    for dispatcher in started:
        dispatcher.stop(5)


def start(dispatchers: list[LeaseDispatcher], router: Router, **options: float) -> LeaseDispatcher:
    settings = {"workers": 3, "lease_seconds": 5.0, "poll_interval_s": 0.05, **options}
    dispatcher = LeaseDispatcher(router, router.ledger, **settings)  # type: ignore[arg-type]
    dispatcher.start()
    dispatchers.append(dispatcher)
    return dispatcher


def all_terminal(ledger: SqlLedger) -> bool:
    return ledger.backlog() == 0


class HeldRuns:
    """Holds every run of the fake instant backend until the test releases it.

    ``started`` is set when a run begins, so a test knows an order is being processed
    (not merely claimed), and the run ends only after ``release``: what happens in
    between is up to the test, not to how fast the machine is.
    """

    def __init__(self, instant: FakeInstant) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.stopped: list[bool] = []
        original = instant.run

        def held(*args: Any, **kwargs: Any) -> Any:
            self.started.set()
            self.release.wait(10)
            return original(*args, **kwargs)

        instant.run = held  # type: ignore[method-assign]


def test_every_order_is_processed_once(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """Orders taken in are each run once and end terminal, woken without waiting for a poll."""
    dispatcher = start(dispatchers, router, poll_interval_s=30.0)
    router.on_intake = lambda _order_id: dispatcher.wake()
    for n in range(20):
        router.intake(make_order(f"o-{n}"), source="api")
    wait_until(lambda: all_terminal(ledger), 10, "every order to be terminal")
    assert set(instant.runs.values()) == {1}
    assert len(instant.runs) == 20


def test_unfinished_orders_are_resumed_on_start(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """Orders a dead worker held (lease expired) and orders never taken are resumed."""
    for n in range(4):
        router.intake(make_order(f"o-{n}"), source="api")
    ledger.claim_due("dead-worker", limit=2, lease_seconds=0.3)
    start(dispatchers, router)
    wait_until(lambda: all_terminal(ledger), 10, "every order to be terminal")
    assert sorted(order_id for order_id, _ in instant.runs) == ["o-0", "o-1", "o-2", "o-3"]
    stories = [ledger.story(f"o-{n}") for n in range(4)]
    assert [story["attempts"] for story in stories if story] == [2, 2, 1, 1]


def test_dispatchers_sharing_a_ledger_never_run_an_order_twice(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """Two dispatchers on one ledger split the orders between them, each run exactly once."""
    instant.delay_s = 0.01
    for n in range(40):
        router.intake(make_order(f"o-{n}"), source="api")
    first, second = start(dispatchers, router), start(dispatchers, router)
    wait_until(lambda: all_terminal(ledger), 20, "every order to be terminal")
    assert first.owner != second.owner
    assert (len(instant.runs), set(instant.runs.values())) == (40, {1})


def test_a_slow_order_keeps_its_lease(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """An order that takes longer than the lease is renewed, so no one else takes it."""
    instant.delay_s = 1.0
    router.intake(make_order("slow"), source="api")
    start(dispatchers, router, lease_seconds=0.3, poll_interval_s=0.02)
    wait_until(lambda: sum(instant.runs.values()) == 1, 5, "the slow order to start")
    start(dispatchers, router, lease_seconds=0.3, poll_interval_s=0.02)
    wait_until(lambda: all_terminal(ledger), 10, "the slow order to end")
    assert instant.runs["slow", False] == 1


def test_a_crashing_order_does_not_kill_its_worker(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """An unexpected error is logged and the order retried; the worker carries on."""
    instant.script("o-1", ZeroDivisionError("bug in a backend"), "fulfilled")
    router.intake(make_order("o-1"), source="api")
    router.intake(make_order("o-2"), source="api")
    with capture_logs() as logs:
        start(dispatchers, router, workers=1)
        wait_until(lambda: all_terminal(ledger), 10, "both orders to be terminal")
    crashes = [event for event in logs if event["event"] == "order_processing_crashed"]
    assert [event["order_id"] for event in crashes] == ["o-1"]
    story = ledger.story("o-1")
    assert story is not None
    assert (story["status"], story["attempts"]) == ("fulfilled", 2)
    assert story["last_error"] == "processing crashed: ZeroDivisionError: bug in a backend"


def test_stop_lets_orders_in_flight_finish(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """A graceful stop waits for the order being processed, and takes no new ones."""
    run = HeldRuns(instant)
    router.intake(make_order("o-1"), source="api")
    dispatcher = start(dispatchers, router, workers=1)
    wait_until(run.started.is_set, 5, "the order to start")
    router.intake(make_order("o-2"), source="api")
    stopper = threading.Thread(target=lambda: run.stopped.append(dispatcher.stop(5)))
    stopper.start()
    wait_until(lambda: dispatcher.stopping, 5, "the stop to begin")
    run.release.set()
    stopper.join(10)
    assert run.stopped == [True]
    first, second = ledger.story("o-1"), ledger.story("o-2")
    assert first is not None
    assert second is not None
    # o-2 is never run: at most claimed (and pinned by the claim) and given back at stop.
    assert (first["status"], instant.runs["o-2", False]) == (OrderStatus.FULFILLED, 0)
    assert second["status"] in {OrderStatus.RECEIVED, OrderStatus.RUNNING}


def test_orders_are_claimed_in_batches(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """The feeder claims up to twice ``workers`` at once, and again only once no more than
    ``workers`` are held: one claim serves several orders."""
    limits: list[int] = []
    real_claim = ledger.claim_due

    def counted(owner: str, *, limit: int, **rest: Any) -> list[LeasedOrder]:
        claimed = real_claim(owner, limit=limit, **rest)
        if claimed:
            limits.append(limit)
        return claimed

    ledger.claim_due = counted  # type: ignore[method-assign]
    for n in range(30):
        router.intake(make_order(f"o-{n}"), source="api")
    start(dispatchers, router, workers=3)
    wait_until(lambda: all_terminal(ledger), 10, "every order to be terminal")
    assert (len(instant.runs), set(instant.runs.values())) == (30, {1})
    assert limits[0] == 6
    assert min(limits) >= 3
    assert len(limits) <= 10


def test_an_order_ending_does_not_claim_when_nothing_is_due(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """Orders arriving one by one are each claimed once: the claim that took an order came
    back short (nothing else due), so the order's end wakes no second, empty claim."""
    claims: list[int] = []
    real_claim = ledger.claim_due

    def counted(owner: str, *, limit: int, **rest: Any) -> list[LeasedOrder]:
        claimed = real_claim(owner, limit=limit, **rest)
        claims.append(len(claimed))
        return claimed

    ledger.claim_due = counted  # type: ignore[method-assign]
    # No poll and no lease renewal within the test: every claim is a wake-up's.
    dispatcher = start(dispatchers, router, poll_interval_s=30.0, lease_seconds=120.0)
    router.on_intake = lambda _order_id: dispatcher.wake()
    wait_until(lambda: claims == [0], 5, "the start's claim")
    for n in range(10):
        router.intake(make_order(f"o-{n}"), source="api")
        wait_until(lambda: all_terminal(ledger) and not dispatcher.in_flight, 10, "the order's end")
    assert (len(instant.runs), set(instant.runs.values())) == (10, {1})
    assert claims == [0] + [1] * 10


def test_a_wake_up_while_every_worker_is_busy_is_not_lost(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """An order taken in while there is no room to claim it is claimed once room is made,
    without waiting for the poll."""
    held = HeldRuns(instant)
    dispatcher = start(dispatchers, router, workers=1, poll_interval_s=30.0, lease_seconds=120.0)
    router.on_intake = lambda _order_id: dispatcher.wake()
    router.intake(make_order("first"), source="api")
    assert held.started.wait(5)
    router.intake(make_order("o-0"), source="api")
    wait_until(lambda: dispatcher.in_flight == 2, 5, "a second order to be claimed")
    for n in range(1, 4):  # one worker holding two orders: no room to claim these
        router.intake(make_order(f"o-{n}"), source="api")
    held.release.set()
    wait_until(lambda: all_terminal(ledger), 10, "every order to be terminal")
    assert (len(instant.runs), set(instant.runs.values())) == (5, {1})


def test_stop_gives_back_orders_no_worker_started(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """Orders claimed but still waiting for a worker at stop are due again at once, their
    claim not counted as an attempt; the one being processed ends first. The claim pinned
    (and started) the returned one: whoever takes it next runs it on that decision."""
    run = HeldRuns(instant)
    real_return = ledger.return_unstarted

    def return_then_release(owner: str, order_ids: Sequence[str]) -> int:
        returned = real_return(owner, order_ids)
        run.release.set()  # the order being processed ends only once the others are back
        return returned

    ledger.return_unstarted = return_then_release  # type: ignore[method-assign]
    for n in range(3):
        router.intake(make_order(f"o-{n}"), source="api")
    dispatcher = LeaseDispatcher(router, ledger, workers=1, lease_seconds=30, poll_interval_s=0.02)
    dispatcher.start()
    wait_until(run.started.is_set, 5, "the first order to start")
    wait_until(lambda: dispatcher.in_flight == 2, 5, "two orders to be held")
    with capture_logs() as logs:
        assert dispatcher.stop(5) is True
    stories = [ledger.story(f"o-{n}") for n in range(3)]
    assert [(s["status"], s["attempts"]) for s in stories if s] == [
        (OrderStatus.FULFILLED, 1),
        (OrderStatus.RUNNING, 0),
        (OrderStatus.RECEIVED, 0),
    ]
    assert [e["orders"] for e in logs if e["event"] == "dispatcher_returned_unstarted"] == [["o-1"]]
    taken = ledger.claim_due("someone-else", limit=5, lease_seconds=30)
    assert [(o.order_id, o.decision is not None, o.pinned_now) for o in taken] == [
        ("o-1", True, False),
        ("o-2", False, False),
    ]


def test_stop_gives_back_what_a_claim_in_progress_takes(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """A claim that was still running when the stop gave up waiting for the feeder gives
    its orders back at once, instead of leaving them leased with no worker to run them."""
    claiming, answer = threading.Event(), threading.Event()
    real_claim = ledger.claim_due

    def slow_claim(owner: str, *, limit: int, **rest: Any) -> list[LeasedOrder]:
        claiming.set()
        answer.wait(10)  # a claim query the ledger answers only after the stop's deadline
        return real_claim(owner, limit=limit, **rest)

    ledger.claim_due = slow_claim  # type: ignore[method-assign]
    for n in range(2):
        router.intake(make_order(f"o-{n}"), source="api")
    dispatcher = LeaseDispatcher(router, ledger, workers=1, lease_seconds=30, poll_interval_s=0.02)
    dispatcher.start()
    wait_until(claiming.is_set, 5, "the feeder to claim")
    with capture_logs() as logs:
        assert dispatcher.stop(0.1) is True
        answer.set()
        wait_until(
            lambda: any(e["event"] == "dispatcher_returned_unstarted" for e in logs),
            5,
            "the claimed orders to be given back",
        )
    assert [e["orders"] for e in logs if e["event"] == "dispatcher_returned_unstarted"] == [
        ["o-0", "o-1"]
    ]
    assert sum(instant.runs.values()) == 0
    taken = real_claim("someone-else", limit=5, lease_seconds=30)
    assert [(order.order_id, order.attempts) for order in taken] == [("o-0", 1), ("o-1", 1)]


def test_stop_leaves_a_stuck_order_to_its_lease(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """An order still running at the stop deadline keeps its lease, so no one runs it twice."""
    run = HeldRuns(instant)
    router.intake(make_order("stuck"), source="api")
    dispatcher = LeaseDispatcher(router, ledger, workers=1, lease_seconds=30, poll_interval_s=0.02)
    dispatcher.start()
    wait_until(run.started.is_set, 5, "the order to start")
    try:
        assert dispatcher.stop(0.2) is False
        assert ledger.claim_due("someone-else", limit=1, lease_seconds=30) == []
    finally:
        run.release.set()
        wait_until(lambda: dispatcher.in_flight == 0, 5, "the stuck order to end")


def test_bad_settings_are_refused(router: Router, ledger: SqlLedger) -> None:
    """A dispatcher without workers, or with a non-positive lease, is a caller mistake."""
    with pytest.raises(ValueError, match="at least 1 worker"):
        LeaseDispatcher(router, ledger, workers=0)
    with pytest.raises(ValueError, match="lease_seconds"):
        LeaseDispatcher(router, ledger, lease_seconds=0)


def test_the_dispatcher_waits_out_a_ledger_outage(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """Claims failing because the ledger is down are retried with backoff, then work resumes."""
    real_claim = ledger.claim_due
    failures = [LedgerError("ledger down"), LedgerError("ledger still down")]

    def flaky_claim(owner: str, *, limit: int, **rest: Any) -> list[LeasedOrder]:
        if failures:
            raise failures.pop(0)
        return real_claim(owner, limit=limit, **rest)

    ledger.claim_due = flaky_claim  # type: ignore[method-assign]
    router.intake(make_order("o-1"), source="api")
    with capture_logs() as logs:
        start(dispatchers, router, poll_interval_s=0.01)
        wait_until(lambda: all_terminal(ledger), 10, "the order to be terminal")
    outages = [event["retry_in_s"] for event in logs if event["event"] == "dispatcher_ledger_error"]
    assert outages == [0.01, 0.02]


class _GatewayDown(InstantFakeLegacy):
    """The legacy app's payment gateway errs for every order whose id starts with "bad"."""

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        if order_id.startswith("bad"):
            self.calls.append(("authorize_payment", order_id, dry_run))
            raise LegacyUnavailable(f"POST /orders/{order_id}/authorize_payment: HTTP 502")
        return super().authorize_payment(order_id, dry_run=dry_run)


class _Fraction(random.Random):
    """Full jitter always draws ``fraction``: the shipped Retry waits fraction x 1, 2, 4 s."""

    def __init__(self, fraction: float) -> None:
        super().__init__(5)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


def test_orders_waiting_for_a_retry_are_parked_not_held(
    ledger: SqlLedger, dispatchers: list[LeaseDispatcher]
) -> None:
    """On one worker, good orders end while failing ones wait out their Retry, leases kept."""
    steps = _GatewayDown()
    with LocalBackend(steps, rng=_Fraction(0.3)) as backend:
        router = Router(ledger, FakeFlags(), FakeLegacy(), backend, retry=FAST_RETRY)
        dispatcher = start(dispatchers, router, workers=1, lease_seconds=1.0)
        router.on_intake = lambda _order_id: dispatcher.wake()
        bad = [f"bad-{n}" for n in range(4)]
        good = [f"good-{n}" for n in range(8)]
        for order_id in bad + good:
            router.intake(make_order(order_id), source="api")

        def stories() -> dict[str, Any]:
            return {order_id: ledger.story(order_id) for order_id in bad + good}

        def ended() -> bool:
            told = stories()
            return all(told[o]["handoff"] for o in bad) and all(
                told[o]["status"] == "fulfilled" for o in good
            )

        wait_until(ended, 20, "good orders to end and failing ones to be handed back")

    told = stories()
    assert {order_id: told[order_id]["status"] for order_id in good} == dict.fromkeys(
        good, "fulfilled"
    )
    assert {order_id: told[order_id]["handoff"] for order_id in bad} == dict.fromkeys(
        bad, "fallback"
    )
    last_good = max(told[order_id]["timestamps"]["terminal"] for order_id in good)
    assert all(last_good < told[order_id]["timestamps"]["fell_back"] for order_id in bad)
    # Parked past the lease (2.1 s of backoff against 1 s): renewed, never re-claimed.
    claims = [order_id for step, order_id, _ in steps.calls if step == "claim"]
    assert sorted(claims) == sorted(bad + good)
    payments = [order_id for step, order_id, _ in steps.calls if step == "authorize_payment"]
    assert all(payments.count(order_id) == 4 for order_id in bad)
    assert dispatcher.parked == 0


def test_shadow_dry_runs_waiting_for_a_retry_are_parked_too(
    ledger: SqlLedger, dispatchers: list[LeaseDispatcher]
) -> None:
    """A shadow order's dry run that waits for its Retry frees the worker as well."""
    steps = _GatewayDown()
    with LocalBackend(steps, rng=_Fraction(0.3)) as backend:
        router = Router(
            ledger, FakeFlags(path=Route.SHADOW), FakeLegacy(), backend, retry=FAST_RETRY
        )
        dispatcher = start(dispatchers, router, workers=1)
        router.on_intake = lambda _order_id: dispatcher.wake()
        ids = ["bad-0", "good-0", "good-1", "good-2"]
        for order_id in ids:
            router.intake(make_order(order_id), source="api")

        def outcomes() -> dict[str, Any]:
            return {o: ledger.story(o)["dry_run_outcome"] for o in ids}  # type: ignore[index]

        wait_until(lambda: None not in outcomes().values(), 20, "every dry run recorded")
        assert outcomes() == {
            "bad-0": "fell_back",
            "good-0": "fulfilled",
            "good-1": "fulfilled",
            "good-2": "fulfilled",
        }
        ended = {
            o: max(step["finished_at"] for step in ledger.story(o)["steps"])  # type: ignore[index]
            for o in ids
        }
    assert max(ended[o] for o in ids[1:]) < ended["bad-0"]


class _ParkedRuns:
    """``router.process`` parks every order whose id starts with "bad" until the test ends
    its execution; resuming one holds its worker until ``resumes_may_end`` is set."""

    def __init__(self, router: Router) -> None:
        self.executions: dict[str, Future[None]] = {}
        self.fresh: list[str] = []
        self.resuming = 0
        self.most_resuming = 0
        self.resumes_may_end = threading.Event()
        self._lock = threading.Lock()
        router.process = self.process  # type: ignore[method-assign]

    def process(self, order: LeasedOrder, _lease: Lease) -> Disposition:
        if not order.order_id.startswith("bad"):
            with self._lock:
                self.fresh.append(order.order_id)
            return DONE
        execution: Future[None] = Future()
        self.executions[order.order_id] = execution
        return Disposition(done=False, parked=Parked(execution, self.resume))

    def resume(self) -> Disposition:
        with self._lock:
            self.resuming += 1
            self.most_resuming = max(self.most_resuming, self.resuming)
        self.resumes_may_end.wait(10)
        with self._lock:
            self.resuming -= 1
        return DONE


def test_resumed_orders_leave_a_worker_to_fresh_ones(
    router: Router, dispatchers: list[LeaseDispatcher]
) -> None:
    """Parked executions ending together hold all workers but one: fresh orders still run."""
    runs = _ParkedRuns(router)
    dispatcher = start(dispatchers, router, workers=3)
    router.on_intake = lambda _order_id: dispatcher.wake()
    bad = [f"bad-{n}" for n in range(6)]
    for order_id in bad:
        router.intake(make_order(order_id), source="api")
    wait_until(lambda: dispatcher.parked == len(bad), 10, "every failing order parked")
    for execution in runs.executions.values():
        execution.set_result(None)
    wait_until(lambda: runs.resuming == 2, 10, "two workers resuming")
    good = [f"good-{n}" for n in range(5)]
    for order_id in good:
        router.intake(make_order(order_id), source="api")
    wait_until(lambda: sorted(runs.fresh) == good, 10, "the fresh orders run beside the resumes")
    wait_until(lambda: dispatcher.in_flight == len(bad), 10, "the fresh orders released")
    assert runs.resuming == 2
    runs.resumes_may_end.set()
    wait_until(lambda: dispatcher.in_flight == 0, 10, "every resumed order finished")
    assert runs.most_resuming == 2


def test_the_claim_pins_so_a_worker_makes_no_pin_of_its_own(
    tmp_path: FsPath, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """On SQLite the feeder's claim pins each batch's decisions in its own commit: a worker
    runs the order without a pin of its own (fewer commits than two per order), and the
    decision is durable before the run's first side effect."""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    statements = Statements(engine)
    ledger = SqlLedger(engine)
    router = Router(ledger, FakeFlags(), FakeLegacy(), instant, retry=FAST_RETRY)
    pins: list[str] = []
    real_pin = ledger.pin_decision
    ledger.pin_decision = lambda order_id, *a, **k: (
        pins.append(order_id) or real_pin(order_id, *a, **k)
    )  # type: ignore[method-assign]
    seen_at_run: list[tuple[str, str | None]] = []
    real_run = instant.run

    def run(order: OrderNotification, **options: Any) -> Any:
        story = ledger.story(order.order_id)  # a read of what is committed
        assert story is not None
        seen_at_run.append((story["status"], (story["decision"] or {}).get("path")))
        return real_run(order, **options)

    instant.run = run  # type: ignore[method-assign]
    count = 24
    for n in range(count):
        router.intake(make_order(f"o-{n}"), source="api")
    before = statements.commits
    start(dispatchers, router, lease_seconds=60.0)
    try:
        wait_until(lambda: all_terminal(ledger), 10, "every order to be terminal")
        for dispatcher in dispatchers:
            dispatcher.stop(5)
        commits = statements.commits - before
    finally:
        ledger.close()
    assert (pins, set(instant.runs.values()), len(instant.runs)) == ([], {1}, count)
    assert set(seen_at_run) == {("running", "instant")}
    # At most a claim per batch of up to six and a finish per order (fewer where writes
    # queued together share a commit): before, a pin per order too.
    assert commits <= count + count // 2


def test_legacy_orders_pinned_by_the_claim_never_reach_a_worker(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """A legacy-path order is pinned with its lease released in the claim: each is logged
    routed once and handed to ``on_legacy_routed`` once, and none is held or run."""
    assert isinstance(router.flags, FakeFlags)
    router.flags.path = Route.LEGACY
    probed: list[str] = []
    router.on_legacy_routed = probed.append
    real_process = router.process
    processed: list[str] = []

    def process(order: LeasedOrder, lease: Lease) -> Disposition:
        processed.append(order.order_id)
        return real_process(order, lease)

    router.process = process  # type: ignore[method-assign]
    for n in range(5):
        router.intake(make_order(f"o-{n}"), source="api")
    with capture_logs() as logs:
        dispatcher = start(dispatchers, router)
        wait_until(lambda: len(probed) == 5, 5, "every order routed to legacy")
        dispatcher.stop(5)
    routed = sorted(e["order_id"] for e in logs if e["event"] == "order_routed")
    assert (sorted(probed), routed, processed) == ([f"o-{n}" for n in range(5)], sorted(probed), [])
    assert ledger.claim_due("someone-else", limit=5, lease_seconds=30) == []
    assert {ledger.story(f"o-{n}")["decision"]["path"] for n in range(5)} == {"legacy"}  # type: ignore[index]
    assert not instant.runs


def test_a_failing_flag_check_at_the_claim_pins_legacy(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """The flag source raising while the claim decides sends the order to legacy, with the
    reason, as a worker's decision would."""
    assert isinstance(router.flags, FakeFlags)
    router.flags.error = RuntimeError("unleash is down")
    router.intake(make_order("o-1"), source="api")
    with capture_logs() as logs:
        start(dispatchers, router)
        wait_until(lambda: ledger.backlog() == 1 and _path(ledger, "o-1") == "legacy", 5, "a pin")
    [raised] = [e for e in logs if e["event"] == "flag_source_raised"]
    story = ledger.story("o-1")
    assert story is not None
    assert (raised["order_id"], story["decision"]["variant"], not instant.runs) == (
        "o-1",
        "disabled",
        True,
    )
    assert "flag source raised RuntimeError: unleash is down" in story["decision"]["reason"]


def _path(ledger: SqlLedger, order_id: str) -> str | None:
    story = ledger.story(order_id)
    return None if story is None or story["decision"] is None else story["decision"]["path"]


def test_claim_now_claims_on_the_calling_thread(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """A wake-up's thread that calls claim_now claims the new order itself: no hand-off to
    the feeder, whose poll is far off; the order is processed once."""
    claims: list[tuple[str, int]] = []
    real_claim = ledger.claim_due

    def named(owner: str, *, limit: int, lease_seconds: float, **options: Any) -> list[LeasedOrder]:
        claimed = real_claim(owner, limit=limit, lease_seconds=lease_seconds, **options)
        claims.append((threading.current_thread().name, len(claimed)))
        return claimed

    ledger.claim_due = named  # type: ignore[method-assign]
    dispatcher = start(dispatchers, router, poll_interval_s=30.0, lease_seconds=120.0)
    wait_until(lambda: claims == [("strangler-feeder", 0)], 5, "the start's claim")
    router.intake(make_order("o-1"), source="api")
    listener = threading.Thread(target=dispatcher.claim_now, name="a-listener")
    listener.start()
    listener.join(5)
    wait_until(lambda: all_terminal(ledger), 10, "the order to be terminal")
    assert [name for name, taken in claims if taken] == ["a-listener"]
    assert instant.runs == {("o-1", False): 1}


def test_claim_now_before_start_wakes_the_feeder_instead(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """Before the dispatcher starts, claim_now claims nothing (no worker could take the
    orders): the feeder's first claim, at start, finds the order."""
    claims: list[str] = []
    real_claim = ledger.claim_due

    def named(owner: str, *, limit: int, lease_seconds: float, **options: Any) -> list[LeasedOrder]:
        claims.append(threading.current_thread().name)
        return real_claim(owner, limit=limit, lease_seconds=lease_seconds, **options)

    ledger.claim_due = named  # type: ignore[method-assign]
    router.intake(make_order("o-1"), source="api")
    dispatcher = LeaseDispatcher(router, ledger, workers=1, lease_seconds=30, poll_interval_s=30)
    dispatcher.claim_now()
    assert claims == []
    dispatcher.start()
    try:
        wait_until(lambda: all_terminal(ledger), 10, "the order to be terminal")
    finally:
        dispatcher.stop(5)
    assert (claims[0], instant.runs) == ("strangler-feeder", {("o-1", False): 1})


def test_claim_now_during_a_claim_leaves_it_to_the_feeder(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """One claim runs at a time: a claim_now while the feeder claims returns at once, and
    the feeder claims again after its claim, which read the ledger before the new order."""
    feeder_claiming, answer = threading.Event(), threading.Event()
    claims: list[tuple[str, list[str]]] = []
    real_claim = ledger.claim_due

    def slow_first(
        owner: str, *, limit: int, lease_seconds: float, **options: Any
    ) -> list[LeasedOrder]:
        first = not claims
        claimed = real_claim(owner, limit=limit, lease_seconds=lease_seconds, **options)
        if first:
            feeder_claiming.set()
            answer.wait(10)  # its read is over: an order taken in now is not in it
        claims.append((threading.current_thread().name, [o.order_id for o in claimed]))
        return claimed

    ledger.claim_due = slow_first  # type: ignore[method-assign]
    dispatcher = start(dispatchers, router, poll_interval_s=30.0, lease_seconds=120.0)
    assert feeder_claiming.wait(5)
    router.intake(make_order("o-1"), source="api")
    dispatcher.claim_now()  # returns at once: the feeder holds the claim
    answer.set()
    wait_until(lambda: all_terminal(ledger) and not dispatcher.in_flight, 10, "the order's end")
    assert claims == [("strangler-feeder", []), ("strangler-feeder", ["o-1"])]
    assert instant.runs == {("o-1", False): 1}


def test_claim_now_never_raises_and_the_feeder_retries(
    router: Router, ledger: SqlLedger, instant: FakeInstant, dispatchers: list[LeaseDispatcher]
) -> None:
    """A claim_now whose claim fails does not raise into the listener's thread: the feeder
    is woken, claims again, and the order is processed."""
    failures = [LedgerError("the database is down", operation="claim due orders")]
    feeder_claims: list[int] = []
    real_claim = ledger.claim_due

    def failing_once(
        owner: str, *, limit: int, lease_seconds: float, **options: Any
    ) -> list[LeasedOrder]:
        if failures and threading.current_thread().name == "a-listener":
            raise failures.pop()
        claimed = real_claim(owner, limit=limit, lease_seconds=lease_seconds, **options)
        feeder_claims.append(len(claimed))
        return claimed

    ledger.claim_due = failing_once  # type: ignore[method-assign]
    dispatcher = start(dispatchers, router, poll_interval_s=30.0, lease_seconds=120.0)
    wait_until(lambda: feeder_claims == [0], 5, "the start's claim")
    router.intake(make_order("o-1"), source="api")
    listener = threading.Thread(target=dispatcher.claim_now, name="a-listener")
    with capture_logs() as logs:
        listener.start()
        listener.join(5)
        wait_until(lambda: all_terminal(ledger), 10, "the order to be terminal")
    assert (failures, feeder_claims) == ([], [0, 1])
    assert [e["event"] for e in logs if "claim_now" in e["event"]] == [
        "dispatcher_claim_now_failed"
    ]
    assert instant.runs == {("o-1", False): 1}
