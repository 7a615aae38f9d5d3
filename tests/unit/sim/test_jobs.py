"""Batch jobs: stage by stage, oldest first, claimed orders skipped, errors retried."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.sim import SimConfig, create_app, simulator
from strangler.sim.jobs import TICK_ORDER, Scheduler
from tests.helpers import wait_until
from tests.unit.sim.api import get_order, run_job
from tests.unit.sim.conftest import OrderFactory


def test_an_order_goes_pending_to_fulfilled_through_three_job_runs(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Fraud scan, payment authorisation and fulfilment each move the order one stage."""
    order_id = make_order(quantity=2)["order_id"]
    statuses = []
    for job in ("fraud_scan", "payment_authorization", "fulfillment"):
        run = run_job(client, job)
        assert (run["selected"], run["processed"], run["trigger"]) == (1, 1, "manual")
        statuses.append(get_order(client, order_id)["status"])
    assert statuses == ["fraud_checked", "authorized", "fulfilled"]
    order = get_order(client, order_id)
    assert [(h["step"], h["actor"], h["decision"]) for h in order["history"]] == [
        ("fraud_scan", "batch", "pass"),
        ("authorize_payment", "batch", "authorized"),
        ("fulfill", "batch", "fulfilled"),
    ]
    assert len(order["vouchers"]) == 2
    assert order["fraud_checked_at"] < order["authorized_at"] < order["fulfilled_at"]
    assert order["terminal_at"] == order["fulfilled_at"]


def test_a_job_only_takes_orders_in_its_status(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Fulfilment finds nothing to do while orders are pending."""
    make_order()
    run = run_job(client, "fulfillment")
    assert (run["selected"], run["processed"]) == (0, 0)


def test_claimed_orders_are_skipped_by_the_jobs(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A job never touches an order claimed by the per-order API."""
    claimed = make_order()["order_id"]
    free = make_order()["order_id"]
    assert client.post(f"/orders/{claimed}/claim").status_code == 200
    run = run_job(client, "fraud_scan")
    assert (run["selected"], run["processed"]) == (1, 1)
    assert get_order(client, claimed)["status"] == "pending"
    assert get_order(client, claimed)["history"] == []
    assert get_order(client, free)["status"] == "fraud_checked"


def test_a_released_order_is_picked_up_on_the_next_run(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Release hands the order back: the next run of its stage's job processes it."""
    order_id = make_order()["order_id"]
    client.post(f"/orders/{order_id}/claim")
    client.post(f"/orders/{order_id}/fraud_scan")
    assert run_job(client, "payment_authorization")["selected"] == 0
    client.post(f"/orders/{order_id}/release", json={"reason": "pipeline timed out"})
    run = run_job(client, "payment_authorization")
    assert (run["selected"], run["processed"]) == (1, 1)
    order = get_order(client, order_id)
    assert order["status"] == "authorized"
    assert [(h["step"], h["actor"]) for h in order["history"]] == [
        ("fraud_scan", "api"),
        ("authorize_payment", "batch"),
    ]


def test_jobs_take_the_oldest_orders_first_up_to_the_batch_size(tmp_path: Path) -> None:
    """With batch size 2, the two oldest pending orders are processed first."""
    app = create_app(SimConfig(db_path=tmp_path / "small.sqlite3", scheduler=False, batch_size=2))
    client = app.test_client()
    try:
        ids = []
        for index in range(3):
            body = {"order_id": f"o-{index}", "user_guid": "u", "unit_id": "x"}
            ids.append(client.post("/orders", json=body).get_json()["order_id"])
        run = run_job(client, "fraud_scan")
        assert (run["selected"], run["processed"]) == (2, 2)
        statuses = [get_order(client, order_id)["status"] for order_id in ids]
        assert statuses == ["fraud_checked", "fraud_checked", "pending"]
    finally:
        simulator(app).stop()


def test_business_verdicts_end_orders(client: FlaskClient, make_order: OrderFactory) -> None:
    """Rejected and declined orders stop at their terminal status with the reason recorded."""
    fraud = make_order(amount_cents=500_000)["order_id"]
    declined = make_order(payment_token="decline_card")["order_id"]
    blocked = make_order(user_guid="user-blocked")["order_id"]
    run = run_job(client, "fraud_scan")
    assert run["outcomes"] == {"reject": 2, "pass": 1}
    run = run_job(client, "payment_authorization")
    assert run["outcomes"] == {"declined": 1}
    assert get_order(client, fraud)["status"] == "rejected_fraud"
    assert get_order(client, fraud)["history"][0]["reason"] == "amount_over_limit"
    assert get_order(client, blocked)["history"][0]["reason"] == "blocked_user"
    order = get_order(client, declined)
    assert (order["status"], order["history"][-1]["reason"]) == (
        "payment_declined",
        "card_declined",
    )
    assert order["terminal_at"] is not None


def test_an_erring_order_is_retried_then_failed(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A gateway error leaves the order for the next run; the third failure fails it."""
    order_id = make_order(payment_token="error_gateway")["order_id"]
    run_job(client, "fraud_scan")
    runs = [run_job(client, "payment_authorization") for _ in range(3)]
    assert [(r["errors"], r["failed"]) for r in runs] == [(1, 0), (1, 0), (1, 1)]
    order = get_order(client, order_id)
    assert (order["status"], order["attempts"]) == ("failed", 3)
    assert "gateway" in order["last_error"]
    assert [h["error"] is not None for h in order["history"]] == [False, True, True, True]
    assert run_job(client, "payment_authorization")["selected"] == 0


def test_get_jobs_shows_schedule_and_runs(client: FlaskClient, make_order: OrderFactory) -> None:
    """GET /jobs lists the three jobs with their batch size and last runs, newest first."""
    make_order()
    run_job(client, "fraud_scan")
    second = run_job(client, "fraud_scan")
    jobs = {job["name"]: job for job in client.get("/jobs").get_json()["jobs"]}
    assert set(jobs) == {"fraud_scan", "payment_authorization", "fulfillment"}
    fraud = jobs["fraud_scan"]
    assert (fraud["step"], fraud["from_status"], fraud["batch_size"]) == (
        "fraud_scan",
        "pending",
        100,
    )
    assert (fraud["scheduled"], fraud["next_run_at"], fraud["running"]) == (False, None, False)
    assert fraud["last_run"] == second
    assert [r["selected"] for r in fraud["recent_runs"]] == [0, 1]
    assert jobs["fulfillment"]["last_run"] is None


def test_unknown_job_is_a_404(client: FlaskClient) -> None:
    """Running an unknown job answers 404 listing the real ones."""
    response = client.post("/jobs/cleanup/run")
    assert response.status_code == 404
    assert "fraud_scan" in response.get_json()["message"]


def test_a_tick_runs_the_last_stage_first(app: Flask, make_order: OrderFactory) -> None:
    """One scheduler tick moves an order one stage only, because later stages run first."""
    client = app.test_client()
    order_id = make_order()["order_id"]
    scheduler = Scheduler(simulator(app).jobs, interval_s=60)
    scheduler.tick()
    assert get_order(client, order_id)["status"] == "fraud_checked"
    scheduler.tick()
    scheduler.tick()
    assert get_order(client, order_id)["status"] == "fulfilled"
    assert TICK_ORDER == ("fulfillment", "payment_authorization", "fraud_scan")


def test_the_scheduler_thread_runs_jobs_on_its_interval(
    app: Flask, make_order: OrderFactory
) -> None:
    """A started scheduler runs the jobs every interval and stops when asked."""
    order_id = make_order()["order_id"]
    scheduler = Scheduler(simulator(app).jobs, interval_s=0.05)
    scheduler.start()
    try:
        assert scheduler.running
        assert scheduler.next_run_at() is not None
        client = app.test_client()
        wait_until(
            lambda: get_order(client, order_id)["status"] == "fulfilled",
            timeout=10,
            what="the scheduler to fulfil the order",
        )
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert scheduler.next_run_at() is None


@pytest.mark.parametrize("interval", [0, -1], ids=["zero", "negative"])
def test_scheduler_refuses_a_nonpositive_interval(app: Flask, interval: float) -> None:
    """A zero or negative interval is refused, naming it."""
    with pytest.raises(ValueError, match="interval_s"):
        Scheduler(simulator(app).jobs, interval_s=interval)
