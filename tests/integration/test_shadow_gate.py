"""Must show (issue 8): shadow traffic finds a known divergence and the gate refuses.

Without the divergence, mismatches are 0 and the gate advances.

Real processes: the legacy simulator (optionally with ``--api-divergence fraud_scan=0.05``)
as upstream and legacy app, ``strangler serve`` at rollout 100 % with the shadow variant at
100 %, 400 orders through the proxy, then ``strangler rollout advance`` as a subprocess.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from strangler.sim.traffic import synthetic_orders
from tests.helpers import REPO_ROOT, strangler_cmd, wait_until
from tests.integration.sidecar_support import (
    AUTH,
    Sidecar,
    running_rollout_sim,
    running_sidecar_on_sim,
)

ORDERS = 400
DIVERGENCE = 0.05
PLAN = "1,5,25,50,100"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=[f"fraud_scan={DIVERGENCE}", None], ids=["fraud-divergence", "none"])
def divergence(request: pytest.FixtureRequest) -> str | None:
    """The simulator's --api-divergence, or none."""
    value: str | None = request.param
    return value


@pytest.fixture
def legacy(tmp_path: Path, divergence: str | None) -> Iterator[str]:
    """``strangler legacy-sim`` with batch jobs every 0.5 s (and the divergence, if any)."""
    with running_rollout_sim(tmp_path, api_divergence=divergence) as url:
        yield url


@pytest.fixture
def sidecar(tmp_path: Path, legacy: str) -> Iterator[Sidecar]:
    """``strangler serve`` in front of the simulator, every order in shadow."""
    with running_sidecar_on_sim(tmp_path, legacy) as running:
        for change in ({"variants": {"shadow": 100}}, {"percentage": 100}):
            answer = requests.put(
                f"{running.url}/_strangler/rollout",
                json={**change, "reason": "must-show: all shadow"},
                headers=AUTH,
                timeout=5,
            )
            answer.raise_for_status()
        probe = {"order_id": "p", "user_guid": "p", "unit_id": "p"}
        wait_until(
            lambda: (
                requests.get(f"{running.url}/_strangler/decide", params=probe, timeout=5)
                .json()
                .get("path")
                == "shadow"
            ),
            10,
            "the sidecar to route to shadow",
        )
        yield running


def _send(sidecar: Sidecar, count: int, prefix: str) -> list[str]:
    bodies = list(synthetic_orders(count, seed=11, prefix=prefix))

    def send(body: dict[str, Any]) -> str:
        answer = requests.post(f"{sidecar.url}/orders", json=body, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["order_id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(send, bodies))


def _send_shadow_orders(sidecar: Sidecar) -> None:
    """Send orders until ORDERS of them went to shadow.

    Orders arriving while the sidecar's flag source still holds the previous rollout go to
    legacy (the change reaches routing within its refresh interval), so top up, bounded.
    """
    _send(sidecar, ORDERS, "mustshow")
    for round_ in range(5):
        wait_until(lambda: _routed(sidecar) >= ORDERS, 30, "every order routed")
        missing = ORDERS - _report(sidecar)["shadow"]["orders"]
        if missing <= 0:
            return
        _send(sidecar, missing, f"topup{round_}")
    pytest.fail(f"fewer than {ORDERS} orders went to shadow after 5 top-ups")


def _routed(sidecar: Sidecar) -> int:
    return sum(int(path["orders"]) for path in _report(sidecar)["paths"])


def _report(sidecar: Sidecar) -> dict[str, Any]:
    answer = requests.get(f"{sidecar.url}/_strangler/report?examples=0", timeout=10)
    answer.raise_for_status()
    report: dict[str, Any] = answer.json()
    return report


def _all_compared(sidecar: Sidecar) -> bool:
    shadow = _report(sidecar)["shadow"]
    return bool(shadow["compared"] + shadow["not_compared"] >= shadow["orders"])


def _advance(sidecar: Sidecar, legacy: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "STRANGLER_DATA_DIR": str(sidecar.data_dir),
        "STRANGLER_FLAGS_FILE": str(sidecar.data_dir / "flags.json"),
        "STRANGLER_LEGACY_URL": legacy,
        "STRANGLER_LOG_FORMAT": "json",
    }
    command = strangler_cmd(
        "rollout", "advance", "--plan", PLAN, "--min-orders", str(ORDERS), "--max-mismatch", "2%"
    )
    return subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in report["shadow"]["steps"] if s["step"] == name)
    return step["shadow"]


def test_shadow_comparison_and_gate(sidecar: Sidecar, legacy: str, divergence: str | None) -> None:
    """A 5 % fraud divergence is found (interval holds 5 %) and fails the gate; none advances."""
    _send_shadow_orders(sidecar)
    wait_until(lambda: _all_compared(sidecar), 90, "every shadow order compared")
    report = _report(sidecar)
    fraud = _step(report, "fraud_scan")
    assert report["shadow"]["orders"] >= ORDERS
    assert [_step(report, s)["successes"] for s in ("authorize_payment", "fulfill")] == [0, 0]

    gate = _advance(sidecar, legacy)
    rollout = requests.get(f"{sidecar.url}/_strangler/rollout", headers=AUTH, timeout=5).json()
    if divergence:
        assert fraud["low"] <= DIVERGENCE <= fraud["high"], fraud
        assert gate.returncode == 4, gate.stdout + gate.stderr
        assert "fail mismatch:fraud_scan" in gate.stdout
        assert rollout["variants"] == {"instant": 0, "shadow": 100}
    else:
        assert fraud["successes"] == 0, fraud
        assert gate.returncode == 0, gate.stdout + gate.stderr
        assert "gate: advance 0% -> 1% (instant weight)" in gate.stdout
        assert rollout["variants"] == {"instant": 1, "shadow": 99}
