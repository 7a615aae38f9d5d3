"""Intake wakes a routing process at once: across processes on one host, across sidecars.

Every sidecar here polls the ledger only every 10 s, so an order routed within a few
seconds of its intake was found by a wake-up, not by the poll. Each case takes in three
orders one after the other, each once the one before is routed, so that the dispatcher is
waiting in its poll when each arrives (the first order may also be met by the
dispatcher's first claim, the later ones only by a wake-up).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from strangler.demo.processes import stop
from tests.helpers import REPO_ROOT, fresh_pg_database, wait_until
from tests.integration.front_support import require_nginx
from tests.integration.legacy_sim import new_order
from tests.integration.sidecar_support import Sidecar, running_sidecar

pytestmark = pytest.mark.slow

POLL_MS = "10000"
# Well inside one poll interval, and loose enough for a loaded machine.
ROUTED_WITHIN_S = 4.0
ORDERS = 3


def status(sidecar: Sidecar, order_id: str) -> str:
    """The order's status in the ledger, as the sidecar tells it."""
    answer = requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=5)
    return str(answer.json().get("status")) if answer.ok else f"HTTP {answer.status_code}"


def sockets(data_dir: Path) -> list[Path]:
    """The wake-up sockets bound for a data dir's SQLite ledger, or in it (PostgreSQL)."""
    return sorted(
        [
            *(data_dir / "ledger.sqlite3-wakeup").glob("*.sock"),
            *(data_dir / "wakeup").glob("*.sock"),
        ]
    )


def take_in_and_see_routed(receiving: Sidecar, observer: Sidecar | None = None) -> None:
    """Post orders to ``receiving``, one after another; each is routed within a few seconds."""
    observer = observer or receiving
    for number in range(ORDERS):
        created = requests.post(f"{receiving.url}/orders", json=new_order("u-wake"), timeout=10)
        assert created.status_code == 201, created.text
        order_id = created.json()["order_id"]
        wait_until(
            lambda order_id=order_id: status(observer, order_id) != "received",
            ROUTED_WITHIN_S,
            f"order {number + 1} of {ORDERS} to be routed (the poll is {POLL_MS} ms)",
            detail=lambda order_id=order_id: (
                status(observer, order_id),
                receiving.log_tail(2000),
            ),
        )


@contextmanager
def running_worker(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[None]:
    """``strangler worker`` with its own ``data_dir``, until the block ends."""
    data_dir.mkdir()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "strangler", "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, "STRANGLER_DATA_DIR": str(data_dir)},
            cwd=REPO_ROOT,
        )
    try:
        yield
    finally:
        stop(process, 20.0)


@pytest.mark.parametrize(
    ("args", "routing_processes"),
    [
        pytest.param((), 1, id="routing-process"),
        pytest.param(("--routing-processes", "2"), 2, id="two-routing-processes"),
        pytest.param(("--front", "nginx"), 1, id="front-nginx"),
        pytest.param(("--routing", "inline"), 1, id="inline"),
    ],
)
def test_intake_wakes_a_routing_process_on_the_same_host(
    tmp_path: Path, legacy_sim: str, args: Sequence[str], routing_processes: int
) -> None:
    """On SQLite, the HTTP process wakes serve's routing processes at once."""
    if "--front" in args:
        require_nginx()
    with running_sidecar(
        tmp_path,
        upstream_url=legacy_sim,
        legacy_url=legacy_sim,
        args=args,
        ready_timeout_s=90.0,
        poll_interval_ms=POLL_MS,
    ) as sidecar:
        wait_until(
            lambda: len(sockets(sidecar.data_dir)) == routing_processes,
            30,
            f"{routing_processes} wake-up socket(s)",
            detail=lambda: sockets(sidecar.data_dir),
        )
        take_in_and_see_routed(sidecar)


def test_intake_wakes_a_worker_on_the_same_sqlite_file(tmp_path: Path, legacy_sim: str) -> None:
    """An intake-only sidecar wakes a ``strangler worker`` started apart on its SQLite
    ledger, though the worker's data dir is another."""
    with running_sidecar(
        tmp_path,
        upstream_url=legacy_sim,
        legacy_url=legacy_sim,
        args=("--intake-only",),
        poll_interval_ms=POLL_MS,
    ) as sidecar:
        env = {
            "STRANGLER_LEGACY_URL": legacy_sim,
            "STRANGLER_FLAGS_FILE": str(sidecar.data_dir / "flags.json"),
            "STRANGLER_POLL_INTERVAL_MS": POLL_MS,
            "STRANGLER_LOG_FORMAT": "json",
            "STRANGLER_LEDGER_URL": f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}",
        }
        with running_worker(tmp_path / "worker-data", env, tmp_path / "worker.log"):
            wait_until(lambda: len(sockets(sidecar.data_dir)) == 1, 30, "the worker's socket")
            take_in_and_see_routed(sidecar)


def test_intake_on_one_sidecar_wakes_another_sharing_postgresql(
    tmp_path: Path, legacy_sim: str
) -> None:
    """An intake-only sidecar's order is routed at once by another sidecar (LISTEN/NOTIFY)."""
    with fresh_pg_database("strangler_wakeups") as url, ExitStack() as stack:
        ledger = url.render_as_string(hide_password=False)
        routing = stack.enter_context(
            running_sidecar(
                tmp_path,
                upstream_url=legacy_sim,
                legacy_url=legacy_sim,
                poll_interval_ms=POLL_MS,
                ledger_url=ledger,
            )
        )
        receiving = stack.enter_context(
            running_sidecar(
                tmp_path,
                upstream_url=legacy_sim,
                legacy_url=legacy_sim,
                args=("--intake-only",),
                poll_interval_ms=POLL_MS,
                ledger_url=ledger,
            )
        )
        wait_until(
            lambda: '"intake_listener_listening"' in routing.log.read_text(errors="replace"),
            30,
            "the routing sidecar to listen",
            detail=routing.log_tail,
        )
        # Two data dirs: no socket is shared, so only the notification can wake it.
        assert sockets(receiving.data_dir) == []
        take_in_and_see_routed(receiving, observer=routing)
