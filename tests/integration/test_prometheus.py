"""A real Prometheus scrapes a running sidecar: the series, the shipped rules, the dashboard.

Real processes: the legacy simulator (order service and legacy app, batch jobs every
second), ``strangler serve`` in front of it with half of the orders in the rollout
(instant and shadow half each), ``strangler rollout advance`` twice (a hold, then a
failure: a hold budget of one order), and Prometheus scraping the sidecar every second
with deploy/prometheus/strangler-rules.yml. Orders go through the proxy; a short spell
of legacy errors opens the circuit breaker. Then every series, rule, alert, dashboard
query and docs/operations.md query is read back through Prometheus's HTTP API.
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
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.prometheus_support import (
    PromQueryError,
    dashboard_queries,
    doc_queries,
    query,
    running_prometheus,
)
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar

ORDERS = 60
# Panels whose data needs what this test does not make happen.
MAY_BE_EMPTY: frozenset[str] = frozenset()

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module's processes."""
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def sim(workdir: Path) -> Iterator[RunningSim]:
    """The legacy simulator with batch jobs every second."""
    with start_legacy_sim(workdir, SimOptions(job_interval=1.0)) as running:
        yield running


@pytest.fixture(scope="module")
def sidecar(workdir: Path, sim: RunningSim) -> Iterator[Sidecar]:
    """``strangler serve`` in front of the simulator: rollout 50 %, instant and shadow half each."""
    with running_sidecar(
        workdir,
        upstream_url=sim.url,
        legacy_url=sim.url,
        poll_interval_ms="200",
        reconcile_interval_s="1",
    ) as running:
        for change in ({"variants": {"instant": 50, "shadow": 50}}, {"percentage": 50}):
            answer = requests.put(
                f"{running.url}/_strangler/rollout",
                # A new ledger has no comparisons: going live says so (issue 21).
                json={**change, "reason": "prometheus test", "no_evidence": True},
                headers=AUTH,
                timeout=5,
            )
            answer.raise_for_status()
        yield running


@pytest.fixture(scope="module")
def prometheus(workdir: Path, sidecar: Sidecar) -> Iterator[str]:
    """Prometheus scraping the sidecar every second, with the shipped rules."""
    with running_prometheus(workdir, [sidecar.url.removeprefix("http://")]) as url:
        wait_until(
            lambda: _values(url, 'up{job="strangler"}') == [1.0],
            30,
            "Prometheus to scrape the sidecar",
        )
        yield url


def _values(prometheus: str, expr: str) -> list[float]:
    return sorted(float(sample["value"][1]) for sample in query(prometheus, expr))


def _by(prometheus: str, expr: str, label: str) -> dict[str, float]:
    return {
        sample["metric"].get(label, ""): float(sample["value"][1])
        for sample in query(prometheus, expr)
    }


def _send(sidecar: Sidecar, count: int) -> None:
    def send(body: dict[str, Any]) -> None:
        requests.post(f"{sidecar.url}/orders", json=body, timeout=10).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, synthetic_orders(count, seed=5, prefix="prom")))


def _gate(sidecar: Sidecar, sim: RunningSim, *options: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "STRANGLER_DATA_DIR": str(sidecar.data_dir),
        "STRANGLER_FLAGS_FILE": str(sidecar.data_dir / "flags.json"),
        "STRANGLER_LEGACY_URL": sim.url,
        "STRANGLER_LOG_FORMAT": "json",
    }
    command = strangler_cmd(
        "rollout", "advance", "--plan", "60,100", "--min-orders", "100000", *options
    )
    return subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def traffic(prometheus: str, sidecar: Sidecar, sim: RunningSim) -> str:
    """Orders through the proxy until all are terminal, a gate hold and a gate failure, a
    spell of legacy errors."""
    _send(sidecar, ORDERS)
    finished = "sum(max by (path, outcome) (strangler_order_processing_seconds_count))"
    wait_until(
        lambda: _values(prometheus, finished) == [ORDERS],
        90,
        f"Prometheus to see {ORDERS} orders terminal",
        detail=lambda: (_values(prometheus, finished), sidecar.log_tail()),
    )
    held = _gate(sidecar, sim)
    assert held.returncode == 3, held.stdout + held.stderr
    # A hold budget of one order: the hold is past it, so the gate fails the step.
    failed = _gate(sidecar, sim, "--max-hold", "1")
    assert failed.returncode == 4, failed.stdout + failed.stderr
    sim.set_faults(error_rate=1.0)
    try:
        wait_until(
            lambda: _values(prometheus, "strangler_legacy_breaker_openings") >= [1.0],
            30,
            "the legacy breaker to open and Prometheus to see it",
        )
    finally:
        sim.set_faults(error_rate=0.0)
    wait_until(
        lambda: _values(prometheus, 'strangler_legacy_breaker_state{state="closed"}') == [1.0],
        60,
        "the legacy breaker to close again",
    )
    return prometheus


def test_the_sidecar_series_reach_prometheus(traffic: str, sidecar: Sidecar) -> None:
    """Backlog, in-flight, shares, kill switch, gate, heartbeats, readiness, comparisons,
    and the instant errors counted as the gate's report counts them."""
    prometheus = traffic
    report = requests.get(f"{sidecar.url}/_strangler/report", timeout=30)
    report.raise_for_status()
    instant = next(path for path in report.json()["paths"] if path["group"] == "instant")
    wait_until(
        lambda: _values(prometheus, "strangler_comparison_steps_last_hour") != [],
        60,
        "shadow comparisons to be counted",
    )
    heartbeat_age = "time() - strangler_role_last_success_timestamp_seconds"

    assert _values(prometheus, "strangler_routing_backlog_orders") == [0.0]
    assert _values(prometheus, "strangler_routing_backlog_oldest_age_seconds") == [0.0]
    assert _by(prometheus, "strangler_orders_in_flight", "path") == {
        "legacy": 0,
        "instant": 0,
        "shadow": 0,
    }
    assert _by(prometheus, "strangler_rollout_share_ratio", "path") == {
        "instant": 0.25,
        "shadow": 0.25,
    }
    assert _values(prometheus, "strangler_flag_killed") == [0.0]
    assert _by(prometheus, "strangler_gate_decisions_total", "decision") == {
        "advance": 0,
        "hold": 1,
        "fail": 1,
        "roll_back": 0,
    }
    assert set(_by(prometheus, heartbeat_age, "role")) == {"follower", "reconciler"}
    assert max(_values(prometheus, heartbeat_age)) < 60
    assert _by(prometheus, "strangler_readiness_ok", "check") == {
        "ledger": 1,
        "flags": 1,
        "upstream": 1,
    }
    assert _values(prometheus, "strangler_instant_errors") == [instant["failed_or_fell_back"]]
    assert set(_by(prometheus, "strangler:orders_terminal_per_second:rate5m", "path")) == {
        "legacy",
        "instant",
        "shadow",
    }


def test_every_shipped_rule_evaluates_without_error(traffic: str) -> None:
    """Prometheus loaded both groups and every rule's last evaluation succeeded."""
    answer = requests.get(f"{traffic}/api/v1/rules", timeout=10).json()
    groups = answer["data"]["groups"]
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]

    assert sorted(group["name"] for group in groups) == ["strangler.alerts", "strangler.recording"]
    assert unhealthy == []


@pytest.mark.parametrize(
    ("panel", "expr"), dashboard_queries(), ids=[name for name, _ in dashboard_queries()]
)
def test_every_dashboard_query_runs_and_has_data(traffic: str, panel: str, expr: str) -> None:
    """Each Grafana panel query is valid PromQL and, with this traffic, returns series."""
    wait_until(
        lambda: panel in MAY_BE_EMPTY or query(traffic, expr) != [],
        30,
        f"data for {panel}: {expr}",
    )


def test_every_query_in_the_operations_doc_runs(traffic: str) -> None:
    """docs/operations.md's PromQL blocks are all accepted by Prometheus."""
    failures = []
    for expr in doc_queries():
        try:
            query(traffic, expr)
        except PromQueryError as exc:
            failures.append(str(exc))

    assert (len(doc_queries()) >= 8, failures) == (True, [])


def test_the_gate_failure_fires_its_alert_and_nothing_else_fires(traffic: str) -> None:
    """StranglerGateFailed (no for: clause) fires in the real Prometheus; no other alert does."""

    def firing() -> set[str]:
        alerts = requests.get(f"{traffic}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return {alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}

    wait_until(lambda: "StranglerGateFailed" in firing(), 30, "the gate alert to fire")

    assert firing() == {"StranglerGateFailed"}
