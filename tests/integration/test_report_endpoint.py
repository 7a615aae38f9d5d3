"""GET /_strangler/report on a real ``strangler serve`` answers what ``strangler report`` prints."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import strangler_cmd, wait_until
from tests.integration.sidecar_support import AUTH, running_sidecar

pytestmark = pytest.mark.slow
ORDERS = 6


def _routed(url: str, order_id: str) -> bool:
    answer = requests.get(f"{url}/_strangler/orders/{order_id}", timeout=5)
    return answer.status_code == 200 and answer.json()["status"] != "received"


def test_endpoint_and_cli_agree_on_a_live_ledger(tmp_path: Path, legacy_sim: str) -> None:
    """Orders sent to a real sidecar show up in its report, identical to the CLI's JSON."""
    with running_sidecar(tmp_path, upstream_url=legacy_sim, legacy_url=legacy_sim) as sidecar:
        ids = [f"rep-{i}" for i in range(ORDERS)]
        for order_id in ids:
            body = {"order_id": order_id, "user_guid": f"u-{order_id}", "unit_id": "unit-1"}
            answer = requests.post(
                f"{sidecar.url}/_strangler/notifications", json=body, headers=AUTH, timeout=5
            )
            assert answer.status_code == 202, answer.text
        wait_until(
            lambda: all(_routed(sidecar.url, i) for i in ids), timeout=30, what="orders routed"
        )
        until = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        seen: list[dict[str, Any]] = []

        def agree() -> bool:
            # Instant orders may finish meanwhile: compare only when the ledger held still.
            before = _served(sidecar.url, until)
            cli = _printed(sidecar.data_dir, until)
            seen[:] = [before, cli, _served(sidecar.url, until)]
            return seen[0] == seen[1] == seen[2]

        wait_until(agree, timeout=90, what="the endpoint and the CLI to agree")
    assert sum(p["orders"] for p in seen[0]["paths"]) == ORDERS
    assert seen[0]["schema_version"] == 1


def _served(url: str, until: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/_strangler/report", params={"until": until}, timeout=60)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    del document["generated_at"]
    return document


def _printed(data_dir: Path, until: str) -> dict[str, Any]:
    printed = subprocess.run(
        strangler_cmd("report", "--until", until, "--format", "json"),
        env={**os.environ, "STRANGLER_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    document: dict[str, Any] = json.loads(printed.stdout)
    del document["generated_at"]
    return document
