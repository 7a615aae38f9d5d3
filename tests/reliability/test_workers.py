"""Real worker processes: killed mid-way and resumed, and two sharing one PostgreSQL ledger.

"Nothing lost" means every order ends with the outcome the legacy app's rules give it;
"nothing run twice" is read on both sides: the simulator's per-order history (no order
both batch and API processed, no step applied twice), the ledger's records, and the
workers' own logs (the pipeline started once per order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderNotification
from tests.helpers import wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.routing import (
    ENDINGS,
    create_in_legacy,
    expected_outcome,
    ledger_rows,
    legacy_orders,
    mixed_orders,
    run_twice_problems,
    write_flags,
)
from tests.reliability.workers import running_workers, runs_per_order, worker_env

pytestmark = pytest.mark.slow


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator; its batch jobs run every 1.5 s."""
    with start_legacy_sim(tmp_path, SimOptions(job_interval=1.5)) as running:
        yield running


def slow_down(sim: RunningSim) -> None:
    """Every call to the legacy app takes a little longer, so that workers are caught
    with orders in flight."""
    sim.set_faults(latency_ms=40)


def place(sim: RunningSim, ledger: SqlLedger, orders: list[OrderNotification]) -> None:
    """As the order service and the sidecar do: each order created in the legacy app,
    then taken into the ledger."""
    for order in orders:
        create_in_legacy(sim.url, [order])
        assert ledger.record_received(order, source="api") is True


def check_every_order(
    ledger: SqlLedger, ledger_url: str, sim: RunningSim, orders: list[OrderNotification]
) -> None:
    """Nothing lost (right outcome, once) and nothing run twice, on both sides' records."""
    stories = {order.order_id: ledger.story(order.order_id) for order in orders}
    wrong = {
        order.order_id: story["status"] if story else None
        for order in orders
        if (story := stories[order.order_id]) is None or story["status"] != expected_outcome(order)
    }
    assert wrong == {}
    with ledger.engine.connect() as conn:
        endings = Counter(
            conn.execute(
                sa.text(
                    f"SELECT order_id FROM ({ENDINGS}) AS ended WHERE status IN "  # noqa: S608
                    "('fulfilled', 'rejected_fraud', 'payment_declined', 'failed')"
                )
            ).scalars()
        )
        repeated_steps = conn.execute(
            sa.text(
                "SELECT order_id, path, step, dry_run, count(*) FROM step_results "
                "GROUP BY order_id, path, step, dry_run HAVING count(*) > 1"
            )
        ).all()
    assert set(endings.values()) == {1}
    assert len(endings) == len(orders)
    assert repeated_steps == []
    legacy = legacy_orders(sim.url, [order.order_id for order in orders])
    assert run_twice_problems(ledger_rows(ledger_url), legacy) == {}


def test_a_killed_worker_loses_nothing_and_runs_nothing_twice(
    sim: RunningSim, tmp_path: Path
) -> None:
    """A worker SIGKILLed mid-way is replaced; every order ends once, none runs twice."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    env = worker_env(
        ledger_url=ledger_url,
        legacy_url=sim.url,
        flags_file=write_flags(tmp_path / "flags.json", rollout=100),
        data_dir=tmp_path / "data",
    )
    orders = mixed_orders(30, "kill")
    slow_down(sim)
    ledger = ledger_from_url(ledger_url)

    def leased() -> list[str]:
        return [order_id for order_id, row in ledger_rows(ledger_url).items() if row["lease_owner"]]

    def mid_way() -> bool:
        return ledger.backlog() <= 24 and bool(leased())

    try:
        with running_workers(env, tmp_path / "first.log") as [first]:
            place(sim, ledger, orders)
            wait_until(mid_way, 30, "some orders to end while others are in flight")
            first.kill()
        in_flight = leased()
        assert in_flight, "the worker was killed with no order in flight"
        with running_workers(env, tmp_path / "second.log") as [second]:
            wait_until(lambda: ledger.backlog() == 0, 60, "every order to end")
        check_every_order(ledger, ledger_url, sim, orders)
        resumed = [ledger.story(order_id) for order_id in in_flight]
        assert [story["attempts"] >= 2 for story in resumed if story] == [True] * len(in_flight)
        runs = runs_per_order(first, second)
        finished_instant = [r for r in ledger_rows(ledger_url).values() if r["handoff"] is None]
        assert finished_instant, "no order was finished by the instant path"
        # Only an order in flight at the kill is started again (and re-joins its run).
        assert {order_id for order_id, n in runs.items() if n > 1} <= set(in_flight)
    finally:
        ledger.close()


@pytest.mark.needs_postgres
def test_two_workers_sharing_postgresql_process_each_order_once(
    sim: RunningSim, tmp_path: Path, pg_url: str
) -> None:
    """Two worker processes on one PostgreSQL ledger split the orders; each runs once."""
    env = worker_env(
        ledger_url=pg_url,
        legacy_url=sim.url,
        flags_file=write_flags(tmp_path / "flags.json", rollout=80),
        data_dir=tmp_path / "data",
    )
    orders = mixed_orders(40, "pair")
    slow_down(sim)
    ledger = ledger_from_url(pg_url)
    try:
        with running_workers(env, tmp_path / "a.log", tmp_path / "b.log") as [first, second]:
            place(sim, ledger, orders)
            wait_until(lambda: ledger.backlog() == 0, 60, "every order to end")
        check_every_order(ledger, pg_url, sim, orders)
        attempts = Counter(row["attempts"] for row in ledger_rows(pg_url).values())
        assert attempts == Counter({1: len(orders)})
        by_first, by_second = runs_per_order(first), runs_per_order(second)
        assert by_first, "the first worker did nothing"
        assert by_second, "the second worker did nothing"
        assert set(by_first) & set(by_second) == set()
        assert set((by_first + by_second).values()) == {1}
    finally:
        ledger.close()
