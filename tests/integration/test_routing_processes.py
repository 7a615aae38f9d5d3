"""``strangler serve --routing-processes 2``: two routing children sharing one ledger.

Both route (each with its own dispatcher under leases, as two ``strangler worker``
processes would), and each is supervised like the other children.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import wait_until
from tests.integration.front_support import CHILDREN_STOP_S, alive, children, descendants
from tests.integration.legacy_sim import RunningSim, new_order
from tests.integration.sidecar_support import Sidecar, running_sidecar

pytestmark = pytest.mark.slow


def routing_starts(sidecar: Sidecar) -> list[dict[str, Any]]:
    """The ``routing_process_started`` lines of the routing processes, from the log."""
    return [
        json.loads(line)
        for line in sidecar.log.read_text(errors="replace").splitlines()
        if '"routing_process_started"' in line
    ]


def routing_owners(sidecar: Sidecar) -> set[str]:
    """The dispatcher owners of the routing processes that have started, from the log."""
    return {start["owner"] for start in routing_starts(sidecar)}


def test_two_routing_processes_route_and_each_is_supervised(
    tmp_path: Path, sim_with_jobs: RunningSim
) -> None:
    """Both children start with their own owner and their start-up heap frozen (out of
    the garbage collector's full collections), orders are fulfilled, and a routing child
    SIGKILLed takes serve down with exit 1 and nothing left behind."""
    with running_sidecar(
        tmp_path,
        upstream_url=sim_with_jobs.url,
        legacy_url=sim_with_jobs.url,
        args=("--routing", "process", "--routing-processes", "2"),
    ) as sidecar:
        wait_until(lambda: len(routing_owners(sidecar)) == 2, 30, "two routing processes")
        frozen = [start["frozen_objects"] for start in routing_starts(sidecar)]
        assert [count > 10_000 for count in frozen] == [True, True], frozen
        order_ids = []
        for _ in range(6):
            created = requests.post(
                f"{sidecar.url}/orders", json=new_order("u-routing"), timeout=10
            )
            assert created.status_code == 201
            order_ids.append(created.json()["order_id"])

        def status(order_id: str) -> str:
            answer = requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=5)
            return str(answer.json().get("status"))

        wait_until(
            lambda: {status(order_id) for order_id in order_ids} == {"fulfilled"},
            60,
            "every order to be fulfilled",
            detail=lambda: {order_id: status(order_id) for order_id in order_ids},
        )
        everyone = descendants(sidecar.process.pid)
        routing = [pid for pid in children(sidecar.process.pid) if not descendants(pid)]
        assert len(routing) == 2
        os.kill(routing[0], signal.SIGKILL)
        assert sidecar.process.wait(60) == 1
        wait_until(
            lambda: alive(list(everyone)) == [],
            CHILDREN_STOP_S,
            "every child to be gone",
            detail=lambda: {pid: everyone[pid] for pid in alive(list(everyone))},
        )
