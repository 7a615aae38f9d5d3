"""Fixtures for adapter tests: mocked HTTP, a fake clock, a client that never really sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strangler.legacy_adapter import CircuitBreaker, LegacyClient
from tests.legacy_http import LegacyHTTPMock
from tests.unit.legacy_adapter.payloads import BASE


class FakeClock:
    """A monotonic clock that moves only when told to (or when the client sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def mocked() -> Iterator[LegacyHTTPMock]:
    """Every HTTP request is answered by what the test registers; others fail."""
    with LegacyHTTPMock() as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock shared by the client and its breaker."""
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[LegacyClient]:
    """A client of the mocked legacy app: 3 retries, breaker after 5 failures, fake time."""
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout_s=5.0, clock=clock)
    with LegacyClient(
        BASE, token="s3cret-token", breaker=breaker, sleep=clock.sleep, clock=clock
    ) as legacy:
        yield legacy
