"""Reliability scenario 4: the same order through the proxy, directly and through SNS.

Every order reaches the sidecar three to five times: a proxied ``POST /orders``, a
direct ``POST /_strangler/notifications``, a signed SNS notification delivered twice (a
redelivery: the same envelope) and, for some orders, a second SNS publication of the
same message (a new MessageId, signature version 1). Deliveries of all orders are
shuffled (seeded) and sent concurrently; for half the orders the order service created
the order before the proxied request, so SNS and direct notifications can arrive before
the proxy sees its answer. After every order has ended, each is delivered once more
(late redelivery). Processed once means: one intake counted ``new`` per order, one
ledger row, one terminal transition, no step recorded twice, and the simulator's own
history with no step done twice.

The sidecar is the real app and Runtime served over loopback in this process, with the
certificate fetcher injected (the only test-only seam, as in
tests/integration/test_sidecar_intake.py); the simulator is a real process.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from strangler.orders import OrderNotification
from strangler.settings import Settings
from strangler.sidecar.app import create_app
from strangler.sidecar.state import sidecar_state
from tests.helpers import free_port, wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.routing import (
    TERMINAL,
    create_in_legacy,
    expected_outcome,
    ledger_rows,
    legacy_orders,
    mixed_orders,
    run_twice_problems,
    terminal_transitions,
    write_flags,
)
from tests.unit.sidecar.sns_signing import TOPIC_ARN, SnsSigner

pytestmark = pytest.mark.slow

TOKEN = "duplicates-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORDERS = 40
SEED = 20261205


@dataclass(frozen=True)
class Sidecar:
    """The in-process sidecar: its base URL and its ledger's URL."""

    url: str
    ledger_url: str


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator (order service and legacy app), batch jobs every second."""
    with start_legacy_sim(tmp_path, SimOptions(job_interval=1.0)) as running:
        yield running


@pytest.fixture
def signer() -> SnsSigner:
    """A self-signed SNS signing identity."""
    return SnsSigner()


@pytest.fixture
def sidecar(tmp_path: Path, sim: RunningSim, signer: SnsSigner) -> Iterator[Sidecar]:
    """The real app and Runtime over loopback: half the orders instant, SNS topic allowed."""
    settings = Settings(
        data_dir=tmp_path / "sidecar",
        flags_file=write_flags(tmp_path / "flags.json", rollout=50),
        upstream_url=sim.url,
        legacy_url=sim.url,
        sns_topic_arns=(TOPIC_ARN,),
        admin_token=TOKEN,
        poll_interval_ms=100,
    )
    settings.data_dir.mkdir()
    confirmed: list[str] = []
    app = create_app(
        settings, cert_fetcher=lambda _url: signer.pem, subscription_confirmer=confirmed.append
    )
    state = sidecar_state(app)
    state.start()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sidecar(f"http://127.0.0.1:{server.server_port}", settings.effective_ledger_url)
    finally:
        server.shutdown()
        thread.join(10)
        state.stop(10)


def deliveries(
    sidecar: Sidecar, signer: SnsSigner, order: OrderNotification, index: int
) -> list[Callable[[], int]]:
    """Every way this order reaches the sidecar, as calls returning the HTTP status."""
    body = order.to_dict()
    message = json.dumps(body)
    envelope = json.dumps(signer.notification(message))

    def proxied() -> int:
        return requests.post(f"{sidecar.url}/orders", json=body, timeout=30).status_code

    def direct() -> int:
        url = f"{sidecar.url}/_strangler/notifications"
        return requests.post(url, json=body, headers=AUTH, timeout=30).status_code

    def sns(data: str = envelope) -> int:
        return requests.post(f"{sidecar.url}/_strangler/sns", data=data, timeout=30).status_code

    def published_again() -> int:
        return sns(json.dumps(signer.notification(message, version="1")))

    calls: list[Callable[[], int]] = [proxied, direct, sns, sns]
    if index % 2:
        calls.append(published_again)
    return calls


def new_intakes(sidecar: Sidecar) -> int:
    """Notifications the sidecar counted as new, over every source."""
    text = requests.get(f"{sidecar.url}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "strangler_intake_notifications_total"
            and sample.labels.get("result") == "new"
        )
    )


def stories(sidecar: Sidecar, orders: list[OrderNotification]) -> dict[str, Any]:
    """Each order's story as the sidecar serves it."""
    return {
        order.order_id: requests.get(
            f"{sidecar.url}/_strangler/orders/{order.order_id}", timeout=10
        ).json()
        for order in orders
    }


def repeated_steps(ledger_url: str) -> list[Any]:
    """Steps recorded more than once for one order, path and kind (real or dry run)."""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT order_id, path, step, dry_run, count(*) FROM step_results "
                        "GROUP BY order_id, path, step, dry_run HAVING count(*) > 1"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_every_duplicate_delivery_is_processed_once(
    sim: RunningSim, sidecar: Sidecar, signer: SnsSigner
) -> None:
    """Shuffled, concurrent and late duplicates through three channels: each order once."""
    orders = mixed_orders(ORDERS, "dup")
    created_first = orders[::2]
    create_in_legacy(sim.url, created_first)
    rng = random.Random(SEED)
    # The proxied request creates the order unless the order service already did: it goes
    # first for those, and anywhere in the shuffle for the others.
    first, rest = [], []
    for index, order in enumerate(orders):
        calls = deliveries(sidecar, signer, order, index)
        if order in created_first:
            rest += calls
        else:
            first.append(calls[0])
            rest += calls[1:]
    rng.shuffle(rest)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(pool.map(lambda call: call(), first))
        statuses += Counter(pool.map(lambda call: call(), rest))

    wait_until(
        lambda: all(story.get("status") in TERMINAL for story in stories(sidecar, orders).values()),
        60,
        "every order to end",
    )
    ended = stories(sidecar, orders)
    ended_after_s = time.monotonic() - started
    with ThreadPoolExecutor(max_workers=8) as pool:
        late = Counter(
            pool.map(
                lambda call: call(),
                [call for i, o in enumerate(orders) for call in deliveries(sidecar, signer, o, i)],
            )
        )

    assert set(statuses) <= {200, 201, 202}, statuses
    assert set(late) == {200}, late
    assert new_intakes(sidecar) == ORDERS
    assert stories(sidecar, orders) == ended
    rows = ledger_rows(sidecar.ledger_url)
    assert sorted(rows) == sorted(order.order_id for order in orders)
    assert {o.order_id: ended[o.order_id]["status"] for o in orders} == {
        o.order_id: expected_outcome(o) for o in orders
    }
    assert set(terminal_transitions(sidecar.ledger_url).values()) == {1}
    assert repeated_steps(sidecar.ledger_url) == []
    legacy = legacy_orders(sim.url, [order.order_id for order in orders])
    assert run_twice_problems(rows, legacy) == {}
    paths = Counter(story["decision"]["path"] for story in ended.values())
    assert set(paths) == {"instant", "legacy"}, paths
    print(  # the scenario's figures for docs/RELIABILITY.md
        f"\nduplicates: orders={ORDERS} created_upstream={len(legacy)} in_ledger={len(rows)} "
        f"terminal={len(terminal_transitions(sidecar.ledger_url))} lost=0 twice=0 "
        f"deliveries={sum(statuses.values())} answers={dict(statuses)} "
        f"late_deliveries={sum(late.values())} paths={dict(paths)} "
        f"sources={dict(Counter(story['source'] for story in ended.values()))} "
        f"all_terminal_after_s={ended_after_s:.1f}"
    )
