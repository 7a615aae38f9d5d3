"""``strangler serve --front nginx --intake-only`` takes orders in and routes none of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.helpers import wait_until
from tests.integration.front_support import descendants, running_front
from tests.integration.legacy_sim import new_order

pytestmark = pytest.mark.slow


def test_intake_only_front_mode_runs_no_routing(tmp_path: Path, legacy_sim: str) -> None:
    """Neither a routing process nor a dispatcher in the HTTP worker: orders wait, durable."""
    args = ("--front", "nginx", "--intake-only")
    with running_front(
        tmp_path, upstream_url=legacy_sim, legacy_url=legacy_sim, args=args
    ) as sidecar:
        created = requests.post(f"{sidecar.url}/orders", json=new_order("u-front"), timeout=10)
        assert created.status_code == 201, created.text
        order_id = created.json()["order_id"]
        known = requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=5).json()
        wait_until(
            lambda: (
                sum("nginx: worker" in c for c in descendants(sidecar.process.pid).values()) == 1
            ),
            timeout=10,
            what="nginx's worker process",
        )
        found = list(descendants(sidecar.process.pid).values())
        log = sidecar.log.read_text()
    assert (known["source"], known["status"]) == ("proxy", "received")
    # gunicorn's master and worker, nginx and its worker: no routing process.
    assert len(found) == 4, found
    # A worker starts its dispatcher before it serves a request; none was started.
    assert "dispatcher_started" not in log, log
