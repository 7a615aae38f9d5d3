"""The adapter against the simulator as a real process on a loopback port."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from strangler.legacy_adapter import (
    CircuitBreaker,
    CircuitOpen,
    ClaimConflict,
    LegacyClient,
    LegacyOrder,
    LegacyRejected,
    LegacyUnavailable,
    OrderNotFound,
)
from tests.helpers import http_ok, wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """One simulator (jobs only on demand) for the tests that only touch their own orders."""
    with start_legacy_sim(
        tmp_path_factory.mktemp("shared-sim"), SimOptions(scheduler=False)
    ) as sim:
        yield sim


@pytest.fixture
def faulty_sim(shared_sim: RunningSim) -> Iterator[RunningSim]:
    """The shared simulator, for a test that injects faults; they are lifted afterwards."""
    yield shared_sim
    wait_until(http_ok(f"{shared_sim.url}/healthz"), 10, "the shared simulator to listen")
    shared_sim.set_faults()


@pytest.fixture
def legacy(shared_sim: RunningSim) -> Iterator[LegacyClient]:
    """A default client of the shared simulator."""
    with LegacyClient(shared_sim.url) as client:
        yield client


def new_order(legacy: LegacyClient, **fields: object) -> LegacyOrder:
    """Create an order with a fresh id and sensible defaults."""
    body = {
        "order_id": f"ord-{uuid.uuid4().hex[:12]}",
        "user_guid": "user-1",
        "unit_id": "unit-1",
        "amount_cents": 2500,
        "quantity": 1,
        "payment_token": "tok_visa_4242",
        **fields,
    }
    return legacy.create_order(body)


def test_the_instant_path_end_to_end(legacy: LegacyClient) -> None:
    """Claim, fraud scan, payment, fulfilment over HTTP: the order is fulfilled by the API."""
    order = new_order(legacy, quantity=2)
    assert legacy.claim(order.order_id) is True
    assert legacy.fraud_scan(order.order_id).decision == "pass"
    assert legacy.authorize_payment(order.order_id).decision == "authorized"
    fulfilled = legacy.fulfill(order.order_id)
    assert (fulfilled.decision, fulfilled.order_status, len(fulfilled.vouchers)) == (
        "fulfilled",
        "fulfilled",
        2,
    )
    final = legacy.get_order(order.order_id)
    assert (final.status, final.processing_mode, final.vouchers) == (
        "fulfilled",
        "instant",
        fulfilled.vouchers,
    )
    assert [(h.step, h.actor) for h in final.history] == [
        ("fraud_scan", "api"),
        ("authorize_payment", "api"),
        ("fulfill", "api"),
    ]


def test_every_write_is_idempotent(legacy: LegacyClient) -> None:
    """Creating, claiming and stepping twice gives the first results again."""
    order = new_order(legacy)
    assert new_order(legacy, order_id=order.order_id) == order
    assert legacy.claim(order.order_id) is True
    assert legacy.claim(order.order_id) is True
    first = legacy.fraud_scan(order.order_id)
    again = legacy.fraud_scan(order.order_id)
    assert (again.decision, again.replayed, first.replayed) == (first.decision, True, False)
    assert len(legacy.get_order(order.order_id).history) == 1


def test_another_owner_cannot_claim(shared_sim: RunningSim, legacy: LegacyClient) -> None:
    """A claim under another client id is refused (False) while the order is claimed."""
    order = new_order(legacy)
    with LegacyClient(shared_sim.url, client_id="other-sidecar") as other:
        assert legacy.claim(order.order_id) is True
        assert other.claim(order.order_id) is False


def test_batch_touched_orders_stay_with_the_batch(legacy: LegacyClient) -> None:
    """Once a job processed the order, claim is False and steps raise ClaimConflict."""
    order = new_order(legacy)
    run = legacy.run_job("fraud_scan")
    assert run.processed >= 1
    assert legacy.claim(order.order_id) is False
    with pytest.raises(ClaimConflict) as caught:
        legacy.authorize_payment(order.order_id)
    assert caught.value.code == "not_claimed"


def test_release_hands_the_order_to_the_next_job_run(legacy: LegacyClient) -> None:
    """A released order is finished by the batch jobs; history shows who did which step."""
    order = new_order(legacy)
    assert legacy.claim(order.order_id)
    legacy.fraud_scan(order.order_id)
    legacy.release(order.order_id, "instant pipeline failed: timeout")
    legacy.release(order.order_id, "again")
    for job in ("payment_authorization", "fulfillment"):
        legacy.run_job(job)
    final = legacy.get_order(order.order_id)
    assert final.status == "fulfilled"
    assert final.release_reason == "instant pipeline failed: timeout"
    assert [(h.step, h.actor) for h in final.history] == [
        ("fraud_scan", "api"),
        ("authorize_payment", "batch"),
        ("fulfill", "batch"),
    ]


def test_dry_runs_decide_without_side_effects(legacy: LegacyClient) -> None:
    """Dry-run claim and steps report decisions and leave the order untouched."""
    order = new_order(legacy, payment_token="decline_card")
    assert legacy.claim(order.order_id, dry_run=True) is True
    assert legacy.fraud_scan(order.order_id, dry_run=True).decision == "pass"
    declined = legacy.authorize_payment(order.order_id, dry_run=True)
    assert (declined.decision, declined.reason, declined.dry_run) == (
        "declined",
        "card_declined",
        True,
    )
    assert len(legacy.fulfill(order.order_id, dry_run=True).vouchers) == 1
    assert legacy.get_order(order.order_id) == order


def test_unknown_orders(legacy: LegacyClient) -> None:
    """Reading or claiming an unknown order raises OrderNotFound."""
    with pytest.raises(OrderNotFound):
        legacy.get_order("ord-does-not-exist")
    with pytest.raises(OrderNotFound):
        legacy.claim("ord-does-not-exist")


def test_bad_input_is_rejected_with_the_field(legacy: LegacyClient) -> None:
    """An invalid order is a LegacyRejected 400 whose body names the field."""
    with pytest.raises(LegacyRejected) as caught:
        legacy.create_order({"order_id": "o", "user_guid": "u", "unit_id": "x", "quantity": -2})
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert list(caught.value.body["fields"]) == ["quantity"]


def test_following_in_bulk_sees_every_change_once(legacy: LegacyClient) -> None:
    """Paging orders_updated_since (inclusive, de-duplicated) sees every order and update."""
    start = legacy.orders_updated_since(None, limit=1000)
    since: datetime | None = max((o.updated_at for o in start), default=None)
    created = [new_order(legacy).order_id for _ in range(7)]
    legacy.claim(created[0])
    seen: dict[tuple[str, datetime], LegacyOrder] = {(o.order_id, o.updated_at): o for o in start}
    while True:
        page = legacy.orders_updated_since(since, limit=3)
        fresh = [o for o in page if (o.order_id, o.updated_at) not in seen]
        if not fresh:
            break
        seen.update({(o.order_id, o.updated_at): o for o in fresh})
        since = page[-1].updated_at
    new_keys = [key for key in seen if key[0] in created]
    assert sorted({order_id for order_id, _ in new_keys}) == sorted(created)
    claimed_versions = [o for (order_id, _), o in seen.items() if order_id == created[0]]
    assert {o.processing_mode for o in claimed_versions} == {"instant"}


def test_twenty_concurrent_claims_have_one_winner(
    shared_sim: RunningSim, legacy: LegacyClient
) -> None:
    """20 threads, each its own client and owner, claim one order: exactly one gets True."""
    order = new_order(legacy)
    barrier = threading.Barrier(20)

    def claim(index: int) -> bool:
        with LegacyClient(shared_sim.url, client_id=f"worker-{index}") as client:
            barrier.wait(10)
            return client.claim(order.order_id)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(claim, range(20)))
    assert results.count(True) == 1
    assert legacy.get_order(order.order_id).processing_mode == "instant"


def test_a_job_running_slowly_skips_an_order_claimed_meanwhile(tmp_path: Path) -> None:
    """With slow jobs, an order claimed while the run is under way is skipped, not doubled."""
    options = SimOptions(scheduler=False, faults={"slow_jobs_ms": 500})
    with start_legacy_sim(tmp_path, options) as sim, LegacyClient(sim.url) as legacy:
        orders = [new_order(legacy) for _ in range(3)]
        runs = []
        worker = threading.Thread(target=lambda: runs.append(legacy.run_job("fraud_scan")))
        worker.start()
        wait_until(lambda: legacy.jobs()[0].running, 5, "the fraud scan to start")
        assert legacy.claim(orders[2].order_id) is True
        worker.join(10)
        (run,) = runs
        assert (run.selected, run.processed, run.skipped) == (3, 2, 1)
        assert (run.finished_at - run.started_at).total_seconds() >= 1.0
        assert legacy.get_order(orders[2].order_id).history == ()


@pytest.mark.parametrize(
    "legacy_sim_options", [SimOptions(job_interval=0.5)], indirect=True, ids=["interval-0.5s"]
)
def test_a_new_order_is_fulfilled_by_the_scheduled_jobs(legacy_sim: str) -> None:
    """With the scheduler on, an order reaches fulfilled one stage per tick; /jobs shows runs."""
    with LegacyClient(legacy_sim) as legacy:
        order = new_order(legacy)
        final = legacy.wait_until_terminal(order.order_id, timeout_s=20, poll_interval_s=0.1)
        jobs = {job.name: job for job in legacy.jobs()}
    assert final.status == "fulfilled"
    assert [(h.step, h.actor) for h in final.history] == [
        ("fraud_scan", "batch"),
        ("authorize_payment", "batch"),
        ("fulfill", "batch"),
    ]
    assert final.fraud_checked_at is not None
    assert final.authorized_at is not None
    assert final.fulfilled_at is not None
    assert final.created_at < final.fraud_checked_at < final.authorized_at < final.fulfilled_at
    for job in jobs.values():
        assert (job.scheduled, job.interval_s) == (True, 0.5)
        assert job.next_run_at is not None
        assert any(run.processed == 1 and run.trigger == "schedule" for run in job.recent_runs)


def test_at_30_percent_errors_200_calls_are_counted_exactly(faulty_sim: RunningSim) -> None:
    """200 calls at a 30% error rate: no unhandled exception, and the counts add up.

    Without retries every failure is one injected error; with the default client, each
    successful call is exactly one attempt the simulator did not fail.
    """
    sim = faulty_sim
    failures = {}
    for retries in (0, 3):
        before = sim.set_faults(error_rate=0.3, seed=42)["stats"]
        breaker = CircuitBreaker(failure_threshold=1000) if retries == 0 else None
        succeeded, failed, created = 0, 0, []
        with LegacyClient(sim.url, retries=retries, backoff_s=0.001, breaker=breaker) as legacy:
            for index in range(200):
                order_id = f"r{retries}-{index // 2}"
                try:
                    if index % 2 == 0:
                        new_order(legacy, order_id=order_id)
                        created.append(order_id)
                    else:
                        legacy.get_order(order_id)
                except OrderNotFound:
                    succeeded += 1
                except LegacyUnavailable:
                    failed += 1
                else:
                    succeeded += 1
        after = sim.set_faults()["stats"]
        attempts = after["requests"] - before["requests"]
        injected = after["injected_errors"] - before["injected_errors"]
        assert succeeded + failed == 200
        assert succeeded == attempts - injected
        with LegacyClient(sim.url) as legacy:
            stored = {o.order_id for o in legacy.list_orders(limit=1000)}
        assert sorted(i for i in stored if i.startswith(f"r{retries}-")) == sorted(created)
        failures[retries] = (failed, injected)
    assert failures[0][0] == failures[0][1]
    assert 30 <= failures[0][0] <= 90
    assert failures[3][0] <= 5
    assert failures[3][1] >= 30


@pytest.mark.parametrize(
    "legacy_sim_options",
    [SimOptions(scheduler=False, token="sim-token")],
    indirect=True,
    ids=["bearer"],
)
def test_the_bearer_token_is_required(legacy_sim: str) -> None:
    """Without the token the app answers 401 (LegacyRejected); with it, calls work."""
    with LegacyClient(legacy_sim) as anonymous, pytest.raises(LegacyRejected) as caught:
        anonymous.list_orders()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    with LegacyClient(legacy_sim, token="wrong") as wrong, pytest.raises(LegacyRejected):
        wrong.list_orders()
    with LegacyClient(legacy_sim, token="sim-token") as legacy:
        assert new_order(legacy).status == "pending"


def test_latency_meets_the_read_timeout(faulty_sim: RunningSim) -> None:
    """Added latency beyond the read timeout is unavailability; within it, calls succeed."""
    faulty_sim.set_faults(latency_ms=300)
    with (
        LegacyClient(faulty_sim.url, read_timeout=0.1, retries=0) as impatient,
        pytest.raises(LegacyUnavailable, match=r"no answer within 0\.1s"),
    ):
        impatient.list_orders()
    with LegacyClient(faulty_sim.url, read_timeout=3) as patient:
        assert patient.list_orders(limit=1) is not None


def test_a_hang_outage_times_out_and_opens_the_breaker(faulty_sim: RunningSim) -> None:
    """During a hang, calls time out, the breaker opens and fails fast; after it, calls work."""
    sim = faulty_sim
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=0.2)
    with LegacyClient(sim.url, read_timeout=0.2, retries=1, breaker=breaker) as legacy:
        held_before = sim.set_faults(outage="hang")["stats"]["held"]
        for _ in range(2):
            with pytest.raises(LegacyUnavailable, match=r"no answer within 0\.2s"):
                legacy.list_orders()
        with pytest.raises(CircuitOpen):
            legacy.list_orders()
        assert sim.faults()["stats"]["held"] - held_before == 4
        sim.set_faults()
        wait_until(lambda: _recovered(legacy), 5, "the client to recover after the outage")


def test_a_refuse_outage_refuses_then_recovers(faulty_sim: RunningSim) -> None:
    """During a refuse outage new connections are refused; the app is back when it ends.

    A client with a pooled keep-alive connection may meet it reset (or answered 503 by
    the app) rather than a refused connect: the contract for every one of these is
    LegacyUnavailable. Only a client with no pooled connection is sure to be refused.
    """
    sim = faulty_sim
    with LegacyClient(sim.url, retries=0) as legacy:
        new_order(legacy, order_id="before-outage")
        windows = sim.set_faults(outage="refuse", outage_seconds=4.0)["stats"]["refused_windows"]
        wait_until(lambda: not http_ok(f"{sim.url}/healthz")(), 5, "the listener to close")
        with (
            LegacyClient(sim.url, retries=0) as fresh,
            pytest.raises(LegacyUnavailable, match="connection refused"),
        ):
            fresh.get_order("before-outage")
        with pytest.raises(LegacyUnavailable):
            legacy.get_order("before-outage")
        wait_until(http_ok(f"{sim.url}/healthz"), 10, "the listener to reopen")
        assert legacy.get_order("before-outage").order_id == "before-outage"
    assert windows == sim.faults()["stats"]["refused_windows"] >= 1


def test_a_restart_keeps_the_data(tmp_path: Path) -> None:
    """Orders, claims and job runs survive stopping and starting the simulator."""
    options = SimOptions(scheduler=False)
    with start_legacy_sim(tmp_path, options) as sim, LegacyClient(sim.url) as legacy:
        claimed = new_order(legacy)
        legacy.claim(claimed.order_id)
        batch = new_order(legacy)
        legacy.run_job("fraud_scan")
        before = [legacy.get_order(o.order_id) for o in (claimed, batch)]
        db = sim.db
    with start_legacy_sim(tmp_path, options, db=db) as sim, LegacyClient(sim.url) as legacy:
        assert [legacy.get_order(o.order_id) for o in (claimed, batch)] == before
        assert legacy.claim(claimed.order_id) is True
        assert legacy.jobs()[0].last_run is not None


def _recovered(legacy: LegacyClient) -> bool:
    try:
        legacy.list_orders(limit=1)
    except LegacyUnavailable:
        return False
    return True
