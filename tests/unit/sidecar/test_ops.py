"""Liveness, readiness, metrics and the status page."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from strangler.sidecar.dispatch import is_own_path
from strangler.sidecar.readiness import Readiness, tcp_probe
from tests.helpers import free_port, wait_until
from tests.unit.sidecar.fakes import FakePool, FakeRuntime


def test_healthz(client: FlaskClient) -> None:
    """The process answers 200 while it serves."""
    response = client.get("/_strangler/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readyz_when_everything_is_fine(client: FlaskClient) -> None:
    """Ready when the ledger answers, the flag loaded and the upstream reachable."""
    response = client.get("/_strangler/readyz")
    assert (response.status_code, response.json) == (
        200,
        {
            "ready": True,
            "checks": {"ledger": "ok", "flags": "ok", "upstream": "ok"},
            "routing": "by flag revision rev-7 (embedded)",
        },
    )


@pytest.mark.parametrize(
    ("breakage", "check", "verdict"),
    [
        ("ledger", "ledger", "not ready: the ledger is down (fake)"),
        ("flags", "flags", "not loaded (embedded): flag file missing"),
    ],
    ids=["ledger-down", "flags-not-loaded"],
)
def test_readyz_names_what_is_wrong(
    client: FlaskClient, runtime: FakeRuntime, breakage: str, check: str, verdict: str
) -> None:
    """Not ready (503) when a check fails, with that check's reason."""
    if breakage == "ledger":
        runtime.ledger.broken = True
    else:
        runtime.flags.loaded = False
    response = client.get("/_strangler/readyz")
    assert (response.status_code, response.json["checks"][check]) == (503, verdict)


def test_readyz_says_orders_go_to_legacy_without_flags(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """With no flag definitions loaded, readiness says every order goes to legacy and why."""
    runtime.flags.loaded = False
    response = client.get("/_strangler/readyz")
    assert response.json["routing"] == "every order to legacy: flag file missing"


def test_upstream_probe_is_cached_for_a_second() -> None:
    """The upstream is probed at most once a second, however often readiness is asked."""
    probes: list[str] = []
    now = [100.0]
    runtime = FakeRuntime()
    readiness = Readiness(
        runtime.ledger,
        runtime.flags,
        "http://upstream.test",
        probe=lambda url: probes.append(url) or "refused",
        clock=lambda: now[0],
    )
    verdicts = [readiness.report().checks["upstream"] for _ in range(3)]
    now[0] += 1.5
    readiness.report()
    assert (verdicts, len(probes)) == (["refused"] * 3, 2)


class _HangingLedger:
    """A ledger whose read probe waits until released (a database that does not answer)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        self.release.wait(timeout=10)


def test_readiness_does_not_wait_for_a_ledger_that_does_not_answer() -> None:
    """A hung ledger read is a failed check naming the cause; the next asks share that probe."""
    runtime = FakeRuntime()
    ledger = _HangingLedger()
    readiness = Readiness(
        ledger,  # type: ignore[arg-type]
        runtime.flags,
        "http://upstream.test",
        probe=lambda _url: None,
        ledger_timeout_s=0.05,
    )
    try:
        verdicts = [readiness.report().checks["ledger"] for _ in range(2)]
        wait_until(lambda: ledger.probes > 0, 10, "the probe thread")
        shared = ledger.probes
    finally:
        ledger.release.set()
    assert all(verdict.startswith("no answer within 0.05 s") for verdict in verdicts), verdicts
    assert shared == 1
    wait_until(lambda: readiness.report().checks["ledger"] == "ok", 10, "the released probe")


def test_tcp_probe_reports_a_closed_port() -> None:
    """The real probe says which address could not be reached."""
    port = free_port()
    problem = tcp_probe(f"http://127.0.0.1:{port}")
    assert problem is not None
    assert f"127.0.0.1:{port}" in problem


def test_metrics_expose_proxy_intake_and_ledger_figures(
    client: FlaskClient, pool: FakePool
) -> None:
    """/metrics has the proxy latency, intake counts and the ledger's figures."""
    client.get("/anything", buffered=True)
    response = client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert response.status_code == 200
    assert samples[("strangler_proxy_request_duration_seconds_count", ())] == 1.0
    assert samples[("strangler_orders", (("path", "instant"), ("status", "fulfilled")))] == 3.0
    assert samples[("strangler_handoffs", (("kind", "fallback"),))] == 1.0
    assert samples[("strangler_instant_errors", ())] == 1.0
    assert samples[("strangler_ledger_backlog", ())] == 2.0
    assert samples[("strangler_ledger_up", ())] == 1.0
    assert samples[("strangler_flag_revision_age_seconds", ())] > 0


def test_metrics_survive_a_ledger_outage(client: FlaskClient, runtime: FakeRuntime) -> None:
    """With the ledger down the scrape still answers, with strangler_ledger_up 0."""
    runtime.ledger.broken = True
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert (response.status_code, "strangler_ledger_up 0.0" in text) == (200, True)
    assert "strangler_proxy_request_duration_seconds" in text


def test_status_page_lists_the_api(client: FlaskClient) -> None:
    """/_strangler/ is an HTML page naming the upstream and every endpoint."""
    page = client.get("/_strangler/").get_data(as_text=True)
    assert "http://upstream.test:8000" in page
    assert all(path in page for path in ("/_strangler/rollout", "/metrics", "/_strangler/sns"))


@pytest.mark.parametrize(
    ("path", "own"),
    [
        ("/_strangler", True),
        ("/_strangler/", True),
        ("/_strangler/readyz", True),
        ("/metrics", True),
        ("/_stranglerX", False),
        ("/metrics/extra", False),
        ("/orders", False),
        ("/", False),
    ],
    ids=["prefix", "slash", "endpoint", "metrics", "lookalike", "metrics-sub", "orders", "root"],
)
def test_own_paths(path: str, own: bool) -> None:
    """Only /_strangler, what is under it, and /metrics are the sidecar's; the rest is proxied."""
    assert is_own_path(path) is own


def test_started_state_stops_the_runtime_once(make_app: Callable[..., Flask]) -> None:
    """start() starts the runtime, stop() stops it with a bounded timeout, both idempotent."""
    from strangler.sidecar.state import sidecar_state  # noqa: PLC0415

    state = sidecar_state(make_app())
    state.start()
    state.start()
    running = state.runtime.running  # type: ignore[attr-defined]
    state.stop(10)
    state.stop(10)
    assert (running, state.runtime.running, state.runtime.stopped_with) == (True, False, 10)  # type: ignore[attr-defined]
