"""The simulator's database: data survives a restart; update stamps keep increasing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from strangler.sim import SimConfig, create_app, simulator
from strangler.sim.engine import NewOrder, OrderBook
from strangler.sim.rules import Rules
from strangler.sim.store import SimStore


def test_a_restart_keeps_orders_and_job_runs(tmp_path: Path) -> None:
    """A new app on the same database file sees the orders and job runs of the old one."""
    config = SimConfig(db_path=tmp_path / "keep.sqlite3", scheduler=False)
    first = create_app(config)
    client = first.test_client()
    client.post("/orders", json={"order_id": "o-1", "user_guid": "u", "unit_id": "x"})
    client.post("/orders/o-1/claim", headers={"Idempotency-Key": "k"})
    client.post("/jobs/fraud_scan/run")
    before = client.get("/orders/o-1").get_json()
    simulator(first).stop()

    second = create_app(config)
    try:
        client = second.test_client()
        assert client.get("/orders/o-1").get_json() == before
        assert client.post("/orders/o-1/claim", headers={"Idempotency-Key": "k"}).status_code == 200
        jobs = {job["name"]: job for job in client.get("/jobs").get_json()["jobs"]}
        assert jobs["fraud_scan"]["last_run"]["selected"] == 0
    finally:
        simulator(second).stop()


def test_stamps_stay_increasing_when_the_clock_stands_still(tmp_path: Path) -> None:
    """With a frozen clock, each write still gets a later updated_at (by a microsecond)."""
    frozen = datetime(2025, 1, 1, tzinfo=UTC)
    store = SimStore(tmp_path / "frozen.sqlite3", now=lambda: frozen)
    book = OrderBook(store, Rules())
    try:
        stamps = [
            book.create(NewOrder(order_id=f"o{i}", user_guid="u", unit_id="x"), None)[0].updated_at
            for i in range(3)
        ]
        assert stamps == [
            "2025-01-01T00:00:00.000000Z",
            "2025-01-01T00:00:00.000001Z",
            "2025-01-01T00:00:00.000002Z",
        ]
    finally:
        store.close()


def test_stamps_stay_increasing_across_a_restart_with_a_clock_behind(tmp_path: Path) -> None:
    """A reopened store never stamps earlier than the newest stamp already stored."""
    path = tmp_path / "clock.sqlite3"
    store = SimStore(path, now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    OrderBook(store, Rules()).create(NewOrder(order_id="a", user_guid="u", unit_id="x"), None)
    store.close()
    reopened = SimStore(path, now=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    try:
        order, _ = OrderBook(reopened, Rules()).create(
            NewOrder(order_id="b", user_guid="u", unit_id="x"), None
        )
        assert order.updated_at == "2030-01-01T00:00:00.000001Z"
    finally:
        reopened.close()


def test_stamps_keep_commit_order_across_stores_sharing_a_file(tmp_path: Path) -> None:
    """Two stores on one file (two simulator processes behind one balancer, each with its
    own lock and clock): every write is stamped after the newest one either committed, so
    a follower reading ``updated_since`` its cursor misses none, whichever clock is
    behind."""
    path = tmp_path / "shared.sqlite3"
    ahead = SimStore(path, now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    behind = SimStore(path, now=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    books = [OrderBook(ahead, Rules()), OrderBook(behind, Rules())]
    try:
        stamps = [
            books[index % 2]
            .create(NewOrder(order_id=f"o{index}", user_guid="u", unit_id="x"), None)[0]
            .updated_at
            for index in range(4)
        ]
        behind_claim = books[1].claim("o0", "key", dry_run=False)
        assert stamps == [
            "2030-01-01T00:00:00.000000Z",
            "2030-01-01T00:00:00.000001Z",
            "2030-01-01T00:00:00.000002Z",
            "2030-01-01T00:00:00.000003Z",
        ]
        assert behind_claim.order.updated_at == "2030-01-01T00:00:00.000004Z"
        listed = [order.order_id for order in ahead.list_orders(limit=10)]
        assert listed == ["o1", "o2", "o3", "o0"]
    finally:
        ahead.close()
        behind.close()


def test_old_job_runs_are_pruned(tmp_path: Path) -> None:
    """Only the last 100 runs of each job are kept."""
    store = SimStore(tmp_path / "runs.sqlite3")
    try:
        for index in range(105):
            store.add_job_run("fraud_scan", {"n": index})
        store.add_job_run("fulfillment", {"n": 0})
        runs = store.job_runs("fraud_scan", 1000)
        assert (len(runs), runs[0]["n"], runs[-1]["n"]) == (100, 104, 5)
        assert len(store.job_runs("fulfillment", 10)) == 1
    finally:
        store.close()
