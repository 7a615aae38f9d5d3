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

from strangler.ledger import ledger_from_url
from strangler.rollout.controller import rollout_controller_from_settings
from strangler.settings import Settings
from strangler.sidecar.gate_answer import FixedRollout, GateQuery, gate_answer
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


# Lenient enough that the few orders here decide (the defaults need 200 and shadow evidence).
GATE_PARAMS = {"min_orders": "1", "no_evidence": "true", "max_error_rate": "100%"}


def test_the_gate_endpoint_answers_what_this_process_computes(
    tmp_path: Path, legacy_sim: str
) -> None:
    """GET /_strangler/gate, computed by the sidecar's report child, is the answer computed
    here by the same code on the same ledger and rollout at the same time (its window's end):
    the status and every field of the body."""
    with running_sidecar(tmp_path, upstream_url=legacy_sim, legacy_url=legacy_sim) as sidecar:
        ids = [f"gate-{i}" for i in range(ORDERS)]
        for order_id in ids:
            body = {"order_id": order_id, "user_guid": f"u-{order_id}", "unit_id": "unit-1"}
            answer = requests.post(
                f"{sidecar.url}/_strangler/notifications", json=body, headers=AUTH, timeout=5
            )
            assert answer.status_code == 202, answer.text
        wait_until(
            lambda: all(_routed(sidecar.url, i) for i in ids), timeout=30, what="orders routed"
        )
        settings = Settings(data_dir=sidecar.data_dir, flags_file=sidecar.data_dir / "flags.json")
        ledger = ledger_from_url(settings.effective_ledger_url)
        controller = rollout_controller_from_settings(settings)
        seen: list[tuple[int, dict[str, Any]]] = []

        def agree() -> bool:
            # Orders may finish meanwhile (and an answer is kept 5 s): compare until they
            # no longer do, at the served answer's own time.
            served = requests.get(f"{sidecar.url}/_strangler/gate", params=GATE_PARAMS, timeout=60)
            now = datetime.fromisoformat(served.json()["window"]["until"])
            query = GateQuery.parse(GATE_PARAMS)
            here = gate_answer(FixedRollout(controller.show()), ledger, query, now=now)
            seen[:] = [(served.status_code, served.json()), (here.status, here.body)]
            return seen[0] == seen[1]

        try:
            wait_until(agree, timeout=90, what="the endpoint and this process to agree")
        finally:
            ledger.close()
        log = sidecar.log.read_text(errors="replace")
    # A verdict over a computed report, not a fail-safe one.
    assert (seen[0][1]["error"], bool(seen[0][1]["checks"])) == (None, True)
    # The verdict came from the report child (the first report of this sidecar started it).
    assert log.count('"report_process_started"') == 1
