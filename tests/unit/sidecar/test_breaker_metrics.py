"""/metrics reports the legacy circuit breaker as its owner recorded it in the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from strangler.background.breaker_report import BREAKER_KEY, BreakerRecorder
from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.legacy_adapter import CircuitBreaker
from strangler.sidecar.metrics import SidecarMetrics
from tests.unit.sidecar.fakes import FakeFlags, FakeLedger


class Clock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A SQLite ledger."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def breaker_samples(metrics: SidecarMetrics) -> dict[str, float]:
    """The breaker samples of one scrape, by state label (or sample name)."""
    text = metrics.exposition().decode()
    return {
        sample.labels.get("state", sample.name): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("strangler_legacy_breaker")
        for sample in family.samples
    }


def fail(breaker: CircuitBreaker, times: int) -> None:
    """Report ``times`` failed calls."""
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_another_process_breaker_shows_through_the_ledger(ledger: SqlLedger) -> None:
    """Open, then half-open for the probe, then closed: each scrape shows the last change."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=5, clock=clock)
    breaker.add_listener(BreakerRecorder(ledger))
    metrics = SidecarMetrics()  # as in an HTTP process, which never calls the legacy app
    metrics.watch(ledger, FakeFlags())

    before = breaker_samples(metrics)
    fail(breaker, 2)
    opened = breaker_samples(metrics)
    clock.now += 5
    breaker.before_call()
    probing = breaker_samples(metrics)
    breaker.record_success()
    closed = breaker_samples(metrics)

    openings = "strangler_legacy_breaker_openings"
    assert before == {}
    assert (opened["open"], opened["closed"], opened[openings]) == (1, 0, 1)
    assert (probing["half_open"], probing["open"]) == (1, 0)
    assert (closed["closed"], closed[openings]) == (1, 1)


def test_an_unreadable_value_shows_nothing(ledger: SqlLedger) -> None:
    """A value that is not a breaker report leaves the breaker metrics out."""
    ledger.set_value(BREAKER_KEY, "not json")
    metrics = SidecarMetrics()
    metrics.watch(ledger, FakeFlags())

    assert breaker_samples(metrics) == {}


def test_without_kv_values_nothing_is_reported() -> None:
    """A ledger without kv values (a fake) has no breaker metrics."""
    metrics = SidecarMetrics()
    metrics.watch(FakeLedger(), FakeFlags())

    assert breaker_samples(metrics) == {}


class BrokenValues:
    """A ledger whose kv writes fail."""

    def get_value(self, name: str) -> str | None:
        raise LedgerError(f"cannot read {name} (fake)")

    def set_value(self, name: str, value: str) -> None:
        raise LedgerError(f"cannot write {name}={value} (fake)")


def test_the_recorder_never_breaks_the_breaker() -> None:
    """A ledger that fails is logged; the breaker still opens."""
    breaker = CircuitBreaker(failure_threshold=1)
    breaker.add_listener(BreakerRecorder(BrokenValues()))
    with capture_logs() as logs:
        fail(breaker, 1)

    assert breaker.times_opened == 1
    assert [log["event"] for log in logs if log["log_level"] == "warning"][-1] == (
        "breaker_state_not_recorded"
    )
