"""Reliability scenario 2: the legacy app errs, slows down and goes away while orders flow.

A real ``strangler serve`` (half the orders on the instant path) in front of the real
simulator, whose faults are set through ``PUT /_sim/faults``, in three phases:

1. errors: 30 % of the legacy app's answers are 500s while 20 orders arrive;
2. latency spike: every legacy call takes 2 s while 10 orders arrive, until the app has
   answered 10 requests that slowly;
3. outage: 16 orders arrive with 300 ms latency and, once one instant order is running,
   the app refuses every connection for 30 s (``outage_seconds``: it comes back on its
   own).

Instant orders retry (instant orders with a failed legacy call, by the sidecar's
``legacy_call_retry`` / ``legacy_call_failed`` events, all of which still end right) and are
handed to the batch jobs when the retries run out (fallback) or when the batch jobs claimed
them first during the outage (claim lost); legacy-path orders wait; nothing is lost or run
twice (the same checks as tests/reliability/test_workers.py); the circuit breaker opens
during the outage and closes after it, as ``/metrics`` shows. Timing, bounded for CI: about
10 s of phases 1 and 2, the 30 s outage, then the recovery (the router's and follower's
backoff doubles up to 30 s, so orders end within about 35 s of the app's return); every wait
has a bound and the whole test stays under 90 s on an idle machine. The one-line summary it
prints is the scenario's row in docs/RELIABILITY.md."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from strangler.legacy_adapter import CircuitBreaker, LegacyClient
from strangler.orders import OrderNotification
from tests.helpers import wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.routing import (
    TERMINAL,
    expected_outcome,
    ledger_rows,
    legacy_orders,
    mixed_orders,
    run_twice_problems,
    terminal_transitions,
    write_flags,
)
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar

pytestmark = pytest.mark.slow

OUTAGE_S = 30.0
_FAILED_CALL_EVENTS = {"legacy_call_retry", "legacy_call_failed"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator, its batch jobs running every second."""
    with start_legacy_sim(tmp_path, SimOptions(job_interval=1.0)) as running:
        yield running


@pytest.fixture
def sidecar(tmp_path: Path, sim: RunningSim) -> Iterator[Sidecar]:
    """``strangler serve`` with half the orders on the instant path, polling every 100 ms."""
    with running_sidecar(
        tmp_path,
        upstream_url=sim.url,
        legacy_url=sim.url,
        flags_file=str(write_flags(tmp_path / "flags.json", rollout=50)),
        poll_interval_ms="100",
    ) as running:
        yield running


@pytest.fixture
def order_service(sim: RunningSim) -> Iterator[LegacyClient]:
    """Creates orders in the legacy app as the order service does, retrying through 5xx."""
    breaker = CircuitBreaker(failure_threshold=1000, reset_timeout_s=1)
    with LegacyClient(sim.url, retries=12, breaker=breaker) as client:
        yield client


def place(sidecar: Sidecar, client: LegacyClient, orders: list[OrderNotification]) -> None:
    """Create each order in the legacy app, then notify the sidecar of it."""
    for order in orders:
        client.create_order(order)
        notify(sidecar, [order])


def notify(sidecar: Sidecar, orders: list[OrderNotification]) -> None:
    """Notify the sidecar of orders the legacy app has already."""
    for order in orders:
        response = requests.post(
            f"{sidecar.url}/_strangler/notifications",
            json=order.to_dict(),
            headers=AUTH,
            timeout=10,
        )
        assert response.status_code == 202, response.text


def breaker(sidecar: Sidecar) -> dict[str, float]:
    """The breaker's samples on /metrics: each state's gauge and ``opened``."""
    text = requests.get(f"{sidecar.url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "strangler_legacy_breaker_state":
                samples[sample.labels["state"]] = sample.value
            elif sample.name == "strangler_legacy_breaker_openings":
                samples["opened"] = sample.value
    return samples


def statuses(sidecar: Sidecar, orders: list[OrderNotification]) -> dict[str, str | None]:
    """Each order's status in the ledger (None while unknown)."""
    found = {}
    for order in orders:
        response = requests.get(f"{sidecar.url}/_strangler/orders/{order.order_id}", timeout=10)
        found[order.order_id] = response.json()["status"] if response.status_code == 200 else None
    return found


def all_ended(sidecar: Sidecar, orders: list[OrderNotification]) -> bool:
    """Every order is terminal in the ledger."""
    return all(status in TERMINAL for status in statuses(sidecar, orders).values())


def repeated_steps(ledger_url: str) -> list[object]:
    """Steps that succeeded more than once for one order, path and kind.

    A step that failed (the release while the app refused connections) and was tried
    again is recorded once per try, with its error; only a repeated success is a problem.
    """
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT order_id, path, step, dry_run, count(*) FROM step_results "
                        "WHERE error IS NULL "
                        "GROUP BY order_id, path, step, dry_run HAVING count(*) > 1"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_errors_latency_and_an_outage_lose_nothing(
    sim: RunningSim, sidecar: Sidecar, order_service: LegacyClient
) -> None:
    """Retries, fallbacks and waits carry every order through; the breaker opens and closes."""
    ledger_url = f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}"
    erring, slow, cut_off = (
        mixed_orders(20, "err"),
        mixed_orders(10, "lat"),
        mixed_orders(16, "out"),
    )
    orders = erring + slow + cut_off
    started = time.monotonic()

    sim.set_faults(error_rate=0.3)
    place(sidecar, order_service, erring)
    sim.set_faults()
    place(sidecar, order_service, slow[:5])
    answered = sim.faults()["stats"]["requests"]
    sim.set_faults(latency_ms=2000)
    notify_later = slow[5:]
    for order in notify_later:
        order_service.create_order(order)
    notify(sidecar, notify_later)
    wait_until(
        lambda: sim.faults()["stats"]["requests"] >= answered + 10 + len(notify_later),
        30,
        "10 slow legacy answers",
    )
    sim.set_faults()
    for order in cut_off:
        order_service.create_order(order)
    sim.set_faults(latency_ms=300)
    notify(sidecar, cut_off)
    wait_until(
        lambda: "running" in statuses(sidecar, cut_off).values(), 20, "an instant order running"
    )
    sim.set_faults(outage="refuse", outage_seconds=OUTAGE_S)
    outage_started = time.monotonic()
    wait_until(lambda: breaker(sidecar).get("open") == 1, 20, "the breaker to open")
    open_seen = time.monotonic() - outage_started
    waiting = [s for s in statuses(sidecar, cut_off).values() if s not in TERMINAL]
    wait_until(lambda: time.monotonic() - outage_started >= OUTAGE_S and sim_up(sim), 40, "the app")
    back = time.monotonic()
    wait_until(lambda: all_ended(sidecar, orders), 60, "every order to end after the outage")
    recovered_s = time.monotonic() - back
    # Closing takes a call after the cool-down: with every order ended, that may be the
    # follower's next sweep, up to its 30 s backoff away (a sweep refused late in the outage).
    wait_until(lambda: breaker(sidecar).get("closed") == 1, 45, "the breaker to close")

    rows = ledger_rows(ledger_url)
    ended = statuses(sidecar, orders)
    assert {o.order_id: ended[o.order_id] for o in orders} == {
        o.order_id: expected_outcome(o) for o in orders
    }
    assert sorted(rows) == sorted(o.order_id for o in orders)
    endings = terminal_transitions(ledger_url)
    assert (len(endings), set(endings.values())) == (len(orders), {1})
    assert repeated_steps(ledger_url) == []
    legacy = legacy_orders(sim.url, [o.order_id for o in orders])
    assert run_twice_problems(rows, legacy) == {}
    instant = [row for row in rows.values() if row["path"] == "instant"]
    retried = failed_calls(sidecar.log) & {row["order_id"] for row in instant}
    # Handed to the batch jobs: fell back (its run failed and it was released), or claim
    # lost (the batch jobs took it while the app refused the run's first call). Which of
    # the two depends on where the outage caught each run: the dispatcher's claim pins and
    # starts an order before its first legacy call, so "running" can precede any claim in
    # the app (fallbacks 0 in 1 of 4 runs when this asserted fallbacks alone).
    handed_over = [row for row in instant if row["handoff"] in ("fallback", "legacy_owned")]
    assert retried, "no legacy call of an instant order failed and was tried again"
    assert handed_over, "no instant order was handed to the batch jobs"
    assert waiting, "the outage caught no order in flight"
    assert breaker(sidecar)["opened"] >= 1
    handoffs = Counter(row["handoff"] for row in instant)
    print(  # the scenario's figures for docs/RELIABILITY.md
        f"\nlegacy faults: orders={len(orders)} created_upstream={len(legacy)} "
        f"in_ledger={len(rows)} terminal={len(endings)} lost=0 twice=0 "
        f"instant={len(instant)} retried={len(retried)} handoffs={dict(handoffs)} "
        f"retried_by_router={sum(row['attempts'] >= 2 for row in instant)} "
        f"waiting_at_outage={len(waiting)} breaker_open_after_s={open_seen:.1f} "
        f"breaker_opened={breaker(sidecar)['opened']:.0f} "
        f"recovered_after_s={recovered_s:.1f} total_s={time.monotonic() - started:.1f}"
    )


def failed_calls(log: Path) -> set[str]:
    """The orders with a legacy call that failed (a retry, or the last try), by the log."""
    found = set()
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in _FAILED_CALL_EVENTS:
            found.add(str(event.get("order_id")))
    return found


def sim_up(sim: RunningSim) -> bool:
    """The simulator answers its health check again."""
    try:
        return requests.get(f"{sim.url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False
