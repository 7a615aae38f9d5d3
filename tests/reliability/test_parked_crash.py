"""Reliability scenario: a worker SIGKILLed while its orders are parked loses and repeats nothing.

A ``strangler worker`` (the dispatcher of a Runtime, no HTTP) routes orders whose payment
gateway always errs (``payment_token: error_gw``) against the real simulator. Once every
order has failed its first AuthorizePayment attempt and is parked for its Retry (its
lease held by the worker, renewed), the worker's process group is SIGKILLed. A new worker
takes the orders up once their leases expire (2 s) and runs their executions again: the
claim and the fraud scan are replayed by the simulator (same Idempotency-Key), not done
again; AuthorizePayment is tried on its schedule and the order is handed back to the
batch jobs once. The ledger records one execution's steps per order (the killed one
recorded none) and no step twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderNotification
from tests.helpers import wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, new_order, start_legacy_sim
from tests.integration.routing import write_flags
from tests.reliability.crash import strangler_process

pytestmark = pytest.mark.slow

ORDERS = 8


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator with no batch jobs running: only the instant path acts."""
    with start_legacy_sim(tmp_path, SimOptions(scheduler=False)) as running:
        yield running


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    opened = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


def create_failing(sim: RunningSim) -> OrderNotification:
    """An order whose payment gateway always errs, created as the order service does."""
    body = {**new_order(f"crash-{uuid.uuid4().hex[:8]}"), "payment_token": "error_gw"}
    answer = requests.post(f"{sim.url}/orders", json=body, timeout=10)
    answer.raise_for_status()
    return OrderNotification.from_dict({**body, "order_id": answer.json()["order_id"]})


def sim_order(sim: RunningSim, order_id: str) -> dict[str, Any]:
    answer = requests.get(f"{sim.url}/orders/{order_id}", timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def test_a_worker_killed_while_orders_are_parked_loses_nothing(
    tmp_path: Path, sim: RunningSim, ledger: SqlLedger
) -> None:
    """Parked orders of a killed worker are taken up again and handed back once each."""
    env = {
        "STRANGLER_DATA_DIR": str(tmp_path),
        "STRANGLER_LEGACY_URL": sim.url,
        "STRANGLER_FLAGS_FILE": str(write_flags(tmp_path / "flags.json", rollout=100)),
        "STRANGLER_LEASE_SECONDS": "2",
        "STRANGLER_POLL_INTERVAL_MS": "100",
        "STRANGLER_WORKERS": "2",
        "STRANGLER_LOG_FORMAT": "json",
    }
    orders = [create_failing(sim) for _ in range(ORDERS)]
    ids = [order.order_id for order in orders]
    for order in orders:
        ledger.record_received(order, source="api")
    log = tmp_path / "worker.log"
    worker = strangler_process("worker", env=env, log=log, ready_event="dispatcher_started")
    worker.start()
    try:
        wait_until(
            lambda: all(sim_order(sim, order_id)["attempts"] >= 1 for order_id in ids),
            30,
            "every order's first payment attempt to fail",
        )
        failed_before = {order_id: sim_order(sim, order_id)["attempts"] for order_id in ids}
        assert all(ledger.story(order_id)["handoff"] is None for order_id in ids)  # type: ignore[index]
        worker.kill()
        worker.start()

        def handed_back() -> bool:
            return all(ledger.story(o)["handoff"] == "fallback" for o in ids)  # type: ignore[index]

        wait_until(handed_back, 60, "every order handed back to the batch jobs")
    finally:
        worker.stop()

    for order_id in ids:
        story = ledger.story(order_id)
        assert story is not None
        assert story["attempts"] == 2  # claimed before the kill, and once after it
        steps = [(step["step"], step["error"] is None) for step in story["steps"]]
        assert steps == [
            ("claim", True),
            ("fraud_scan", True),
            ("authorize_payment", False),
            ("release", True),
        ], order_id
        legacy = sim_order(sim, order_id)
        assert (legacy["status"], legacy["processing_mode"]) == ("fraud_checked", "batch")
        # The new execution made its own 4 attempts; the killed one stopped mid-schedule.
        assert legacy["attempts"] - failed_before[order_id] in range(4, 4 + 4)
        assert legacy["release_reason"]
