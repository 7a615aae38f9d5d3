"""/metrics reports the legacy circuit breaker: its state and how often it opened."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from strangler.legacy_adapter import CircuitBreaker
from strangler.sidecar.metrics import SidecarMetrics
from tests.unit.sidecar.fakes import FakeFlags, FakeLedger


class Clock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker_samples(metrics: SidecarMetrics) -> dict[tuple[str, str], float]:
    """The breaker samples of one scrape, by (sample name, state label or '')."""
    text = metrics.exposition().decode()
    return {
        (sample.name, sample.labels.get("state", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("strangler_legacy_breaker")
        for sample in family.samples
    }


def fail(breaker: CircuitBreaker, times: int) -> None:
    """Report ``times`` failed calls."""
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_the_breaker_state_and_openings_follow_the_breaker() -> None:
    """Closed, then open after failures, half-open after the cool-down, closed on success."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=5, clock=clock)
    metrics = SidecarMetrics()
    metrics.watch(FakeLedger(), FakeFlags(), breaker=breaker)
    state = "strangler_legacy_breaker_state"
    opened = ("strangler_legacy_breaker_opened_total", "")

    closed = breaker_samples(metrics)
    fail(breaker, 2)
    opened_now = breaker_samples(metrics)
    clock.now += 5
    probing = breaker_samples(metrics)
    breaker.before_call()
    breaker.record_success()
    recovered = breaker_samples(metrics)

    assert (closed[(state, "closed")], closed[opened]) == (1, 0)
    assert (opened_now[(state, "open")], opened_now[(state, "closed")], opened_now[opened]) == (
        1,
        0,
        1,
    )
    assert probing[(state, "half_open")] == 1
    assert (recovered[(state, "closed")], recovered[opened]) == (1, 1)


def test_without_a_breaker_nothing_is_reported() -> None:
    """A sidecar whose legacy part is not the HTTP client has no breaker metrics."""
    metrics = SidecarMetrics()
    metrics.watch(FakeLedger(), FakeFlags())

    assert breaker_samples(metrics) == {}
