"""Must show (issue 21): a first rollout walks off -> shadow -> live -> complete, the gate
deciding each step, and going live without comparison evidence is refused unless told.

Real processes: the legacy simulator (batch jobs every 0.5 s) as upstream and legacy app,
``strangler serve`` on a copy of the shipped flag (stage off, shadow-first), orders through
the proxy, and ``strangler rollout stage | set | advance | show`` as CLI subprocesses on the
sidecar's flag file and ledger.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from strangler.report.stats import orders_needed
from strangler.sim.traffic import synthetic_orders
from tests.helpers import REPO_ROOT, strangler_cmd, wait_until
from tests.integration.sidecar_support import (
    AUTH,
    Sidecar,
    running_rollout_sim,
    running_sidecar_on_sim,
)

ORDERS_PER_STEP = 300
PLAN = "10,50,100"
# Lenient enough for a few hundred orders per step; the defaults need ~800 compared orders.
STEP_ORDERS = 250
MAX_ERROR_RATE = 0.15
GATE = (
    "--min-orders",
    str(STEP_ORDERS),
    "--max-mismatch",
    "5%",
    "--max-error-rate",
    f"{MAX_ERROR_RATE:.0%}",
)
# The instant orders the error-rate check needs to pass when none of them failed.
INSTANT_ORDERS = orders_needed(0.0, MAX_ERROR_RATE) or 0

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def legacy(tmp_path: Path) -> Iterator[str]:
    """``strangler legacy-sim`` with batch jobs every 0.5 s, no divergence."""
    with running_rollout_sim(tmp_path) as url:
        yield url


@pytest.fixture
def sidecar(tmp_path: Path, legacy: str) -> Iterator[Sidecar]:
    """``strangler serve`` in front of the simulator, on the shipped flag."""
    with running_sidecar_on_sim(tmp_path, legacy) as running:
        yield running


def _cli(sidecar: Sidecar, legacy: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "STRANGLER_DATA_DIR": str(sidecar.data_dir),
        "STRANGLER_FLAGS_FILE": str(sidecar.data_dir / "flags.json"),
        "STRANGLER_LEGACY_URL": legacy,
        "STRANGLER_LOG_FORMAT": "json",
    }
    return subprocess.run(
        strangler_cmd("rollout", *args, "--actor", "walk-test")
        if args[0] != "show"
        else strangler_cmd("rollout", *args),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _advance(sidecar: Sidecar, legacy: str) -> subprocess.CompletedProcess[str]:
    return _cli(sidecar, legacy, "advance", "--plan", PLAN, *GATE)


def _show(sidecar: Sidecar, legacy: str) -> dict[str, Any]:
    done = _cli(sidecar, legacy, "show", "--json")
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def _routes_as(sidecar: Sidecar, paths: set[str]) -> bool:
    """True when 60 probe users are routed to exactly ``paths`` (the change has arrived)."""
    seen = set()
    for n in range(60):
        probe = {"order_id": f"p{n}", "user_guid": f"probe-{n}", "unit_id": "p"}
        answer = requests.get(f"{sidecar.url}/_strangler/decide", params=probe, timeout=5)
        seen.add(answer.json().get("path"))
    return seen == paths


def _routing_rollout(sidecar: Sidecar) -> int:
    """The rollout percentage the sidecar's flag source decides with now."""
    probe = {"order_id": "p", "user_guid": "probe", "unit_id": "p"}
    answer = requests.get(f"{sidecar.url}/_strangler/decide", params=probe, timeout=5)
    return int(answer.json()["rollout"])


def _fresh() -> dict[str, str]:
    """An ``until`` a day ahead, new on every call: the sidecar keeps a report for 5 s per
    query, and a test waiting on the figures must see them as they are now."""
    return {"until": (datetime.now(UTC) + timedelta(days=1)).isoformat()}


def _report(sidecar: Sidecar) -> dict[str, Any]:
    answer = requests.get(
        f"{sidecar.url}/_strangler/report", params={"examples": 0, **_fresh()}, timeout=10
    )
    answer.raise_for_status()
    report: dict[str, Any] = answer.json()
    return report


def _send(sidecar: Sidecar, prefix: str, count: int) -> None:
    bodies = list(synthetic_orders(count, seed=23, prefix=prefix))

    def send(body: dict[str, Any]) -> None:
        requests.post(f"{sidecar.url}/orders", json=body, timeout=10).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, bodies))


def _settled(sidecar: Sidecar) -> bool:
    """Every routed order is terminal and every shadow order compared (or given up)."""
    report = _report(sidecar)
    paths = report["paths"]
    routed = sum(int(p["orders"]) for p in paths)
    terminal = sum(int(p["terminal"]) for p in paths)
    shadow = report["shadow"]
    return routed == terminal and shadow["compared"] + shadow["not_compared"] >= shadow["orders"]


def _step_orders(sidecar: Sidecar) -> dict[str, int]:
    """Orders routed in the gate's current step (since step_since), by group."""
    rollout = requests.get(f"{sidecar.url}/_strangler/rollout", headers=AUTH, timeout=5).json()
    since = rollout["step_since"]
    query = {"examples": 0, **_fresh(), **({"since": since} if since else {})}
    answer = requests.get(f"{sidecar.url}/_strangler/report", params=query, timeout=10)
    answer.raise_for_status()
    groups: dict[str, int] = {}
    for path in answer.json()["paths"]:
        groups[path["group"]] = groups.get(path["group"], 0) + int(path["orders"])
    return groups


def _send_step(
    sidecar: Sidecar,
    prefix: str,
    count: int = ORDERS_PER_STEP,
    need: int = STEP_ORDERS,
    instant_percent: int = 0,
) -> None:
    """Send a step's orders and wait until each is terminal and each shadow one compared.

    The routing process's flag source picks a change up within about a second, so orders
    sent at once may still be routed by the previous configuration; and an instant share of
    10 % may draw fewer instant orders than the error-rate check needs. Top up, bounded,
    until the step holds ``need`` new-side orders and, when ``instant_percent`` is
    set, ``INSTANT_ORDERS`` instant ones.
    """
    _send(sidecar, prefix, count)
    for round_ in range(5):
        wait_until(lambda: _settled(sidecar), 120, f"{prefix}: every order terminal and compared")
        groups = _step_orders(sidecar)
        missing = need - groups.get("instant", 0) - groups.get("shadow", 0)
        if instant_percent:
            missing_instant = INSTANT_ORDERS - groups.get("instant", 0)
            missing = max(missing, -(-missing_instant * 100 // instant_percent))
        if missing <= 0:
            return
        _send(sidecar, f"{prefix}-topup{round_}", missing)
    pytest.fail(f"{prefix}: the step is short of orders after 5 top-ups: {groups}")


def test_walk_off_shadow_live_complete(sidecar: Sidecar, legacy: str) -> None:
    """off -> shadow -> live 10 % -> live 50 % -> complete, each step the gate's; going live
    by hand without comparisons is refused (exit 3) unless --no-evidence."""
    # off: the shipped flag sends nothing to the new side; the gate has nothing to judge.
    assert (_show(sidecar, legacy)["stage"], _routes_as(sidecar, {"legacy"})) == ("off", True)
    held = _advance(sidecar, legacy)
    assert held.returncode == 3, held.stdout + held.stderr
    refused = _cli(sidecar, legacy, "stage", "live", "--percent", "10", "--reason", "too early")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "no comparisons yet" in refused.stderr
    assert _show(sidecar, legacy)["stage"] == "off"

    # shadow: every order shadowed; the gate judges the comparisons and goes live at 10 %.
    shadow = _cli(sidecar, legacy, "stage", "shadow", "--reason", "compare every order")
    assert shadow.returncode == 0, shadow.stderr
    wait_until(lambda: _routes_as(sidecar, {"shadow"}), 15, "routing in shadow")
    _send_step(sidecar, "shadow")
    live = _advance(sidecar, legacy)
    assert live.returncode == 0, live.stdout + live.stderr
    assert "gate: advance 0% -> 10% (instant weight)" in live.stdout
    state = _show(sidecar, legacy)
    assert (state["stage"], state["variants"]) == ("live", {"instant": 10, "shadow": 90})

    # live: the gate raises the instant share while the rest stays in shadow.
    wait_until(lambda: _routes_as(sidecar, {"instant", "shadow"}), 15, "routing live")
    _send_step(sidecar, "live10", instant_percent=10)
    half = _advance(sidecar, legacy)
    assert half.returncode == 0, half.stdout + half.stderr
    assert _show(sidecar, legacy)["variants"] == {"instant": 50, "shadow": 50}

    # complete: the plan's last step, every order on instant.
    _send_step(sidecar, "live50", instant_percent=50)
    done = _advance(sidecar, legacy)
    assert done.returncode == 0, done.stdout + done.stderr
    state = _show(sidecar, legacy)
    assert (state["stage"], state["shares"]) == ("complete", {"instant": 100.0, "shadow": 0.0})

    report = _report(sidecar)
    stages = [(e["kind"], e["stage"]) for e in report["rollout"]]
    assert stages == [
        ("gate_hold", "off"),
        ("stage", "shadow"),
        ("gate_advance", "live"),
        ("gate_advance", "live"),
        ("gate_advance", "complete"),
    ]
    assert not any(e["no_evidence"] for e in report["rollout"])


def test_set_and_advance_go_live_only_with_evidence_or_no_evidence(
    sidecar: Sidecar, legacy: str
) -> None:
    """`rollout set` from 0 % instant to a live share is refused without comparisons, and
    --no-evidence goes live, recorded on the timeline the report reads; `advance` on
    instant orders with nothing compared holds ("no comparisons yet") unless told."""
    weights = _cli(sidecar, legacy, "variants", "instant=100", "--reason", "old shape")
    assert weights.returncode == 0, weights.stderr
    refused = _cli(sidecar, legacy, "set", "10", "--reason", "first step")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "--no-evidence" in refused.stderr
    assert _show(sidecar, legacy)["rollout"] == 0
    forced = _cli(sidecar, legacy, "set", "10", "--reason", "hotfix", "--no-evidence")
    assert forced.returncode == 0, forced.stderr
    assert _show(sidecar, legacy)["stage"] == "live"
    last = _report(sidecar)["rollout"][-1]
    assert (last["kind"], last["stage"], last["no_evidence"]) == ("set", "live", True)

    wait_until(lambda: _routing_rollout(sidecar) == 10, 15, "routing at 10 %")
    _send_step(sidecar, "unseen", count=100, need=1)
    lenient = ("--plan", "20", "--min-orders", "1", "--max-error-rate", "60%")
    held = _cli(sidecar, legacy, "advance", *lenient)
    assert held.returncode == 3, held.stdout + held.stderr
    assert "mismatch: no comparisons yet" in held.stdout
    told = _cli(sidecar, legacy, "advance", *lenient, "--no-evidence")
    assert told.returncode == 0, told.stdout + told.stderr
    assert _show(sidecar, legacy)["rollout"] == 20
