"""The circuit breaker: opens after consecutive failures, probes after a cool-down."""

from __future__ import annotations

import pytest
from urllib3.exceptions import ProtocolError

from strangler.legacy_adapter import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    LegacyClient,
    LegacyRejected,
    LegacyUnavailable,
)
from tests.legacy_http import LegacyHTTPMock
from tests.unit.legacy_adapter.conftest import FakeClock
from tests.unit.legacy_adapter.payloads import BASE, error_json, order_json

ORDER_URL = f"{BASE}/orders/ord-1"


def breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, reset_timeout_s=10, clock=clock)


def test_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    """Three failures in a row open it; calls then fail fast with the time to wait."""
    cb = breaker(clock)
    for _ in range(3):
        cb.before_call()
        cb.record_failure()
    assert cb.state is BreakerState.OPEN
    clock.now += 4
    with pytest.raises(CircuitOpen) as caught:
        cb.before_call()
    assert caught.value.retry_after_s == pytest.approx(6)
    assert isinstance(caught.value, LegacyUnavailable)


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    cb = breaker(clock)
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        cb.before_call()
        cb.record_failure() if outcome == "fail" else cb.record_success()
    assert (cb.state, cb.consecutive_failures) == (BreakerState.CLOSED, 2)


def test_half_open_lets_one_probe_through(clock: FakeClock) -> None:
    """After the cool-down one probe goes through while others still fail fast."""
    cb = breaker(clock, threshold=1)
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    assert cb.state is BreakerState.HALF_OPEN
    cb.before_call()
    with pytest.raises(CircuitOpen) as caught:
        cb.before_call()
    assert caught.value.retry_after_s == 0
    cb.record_success()
    assert cb.state is BreakerState.CLOSED
    cb.before_call()


def test_a_failed_probe_opens_it_again(clock: FakeClock) -> None:
    """A probe that fails starts a new cool-down."""
    cb = breaker(clock, threshold=2)
    for _ in range(2):
        cb.before_call()
        cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_failure()
    assert cb.state is BreakerState.OPEN
    clock.now += 9
    with pytest.raises(CircuitOpen):
        cb.before_call()


def test_an_abandoned_probe_frees_the_slot(clock: FakeClock) -> None:
    """A probe that ended without a verdict lets the next call probe instead."""
    cb = breaker(clock, threshold=1)
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_abandoned()
    cb.before_call()
    assert cb.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"failure_threshold": 0}, "failure_threshold"), ({"reset_timeout_s": 0}, "reset_timeout_s")],
    ids=["threshold", "timeout"],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    """A zero threshold or cool-down is refused, naming it."""
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_the_client_fails_fast_while_open_and_recovers(clock: FakeClock) -> None:
    """Five failed calls open the client's breaker; no HTTP is sent until the probe, which
    closes it again."""
    cb = CircuitBreaker(failure_threshold=5, reset_timeout_s=5, clock=clock)
    with (
        LegacyHTTPMock() as mock,
        LegacyClient(BASE, retries=0, breaker=cb, sleep=clock.sleep) as legacy,
    ):
        mock.get(ORDER_URL, body=ProtocolError("down", OSError("down")))
        for _ in range(5):
            with pytest.raises(LegacyUnavailable):
                legacy.get_order("ord-1")
        assert cb.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            legacy.get_order("ord-1")
        assert len(mock.calls) == 5
        clock.now += 5
        mock.replace(mock.GET, ORDER_URL, json=order_json())
        assert legacy.get_order("ord-1").order_id == "ord-1"
        assert cb.state is BreakerState.CLOSED


def test_rejections_do_not_open_the_breaker(clock: FakeClock) -> None:
    """4xx answers show the app is up: they never count as failures."""
    cb = CircuitBreaker(failure_threshold=2, clock=clock)
    with LegacyHTTPMock() as mock, LegacyClient(BASE, breaker=cb) as legacy:
        mock.get(ORDER_URL, json=error_json("invalid_request"), status=400)
        for _ in range(3):
            with pytest.raises(LegacyRejected):
                legacy.get_order("ord-1")
    assert (cb.state, cb.consecutive_failures) == (BreakerState.CLOSED, 0)


@pytest.mark.parametrize(
    ("code", "state"),
    [("payment_gateway_error", BreakerState.CLOSED), ("internal", BreakerState.OPEN)],
    ids=["order-scoped-gateway-error", "app-error"],
)
def test_only_app_failures_open_the_breaker(
    clock: FakeClock, code: str, state: BreakerState
) -> None:
    """A 502 saying one order's payment gateway failed is retryable but leaves the breaker
    closed (the app answered); any other 5xx counts against the app."""
    cb = CircuitBreaker(failure_threshold=2, clock=clock)
    pay_url = f"{ORDER_URL}/authorize_payment"
    with LegacyHTTPMock() as mock, LegacyClient(BASE, retries=0, breaker=cb) as legacy:
        mock.post(pay_url, json=error_json(code), status=502)
        for _ in range(2):
            with pytest.raises(LegacyUnavailable) as raised:
                legacy.authorize_payment("ord-1")
            assert (raised.value.status, raised.value.code) == (502, code)
    assert cb.state is state


def test_a_retried_success_counts_once_as_success(clock: FakeClock) -> None:
    """The breaker hears one outcome per call: failures inside a call's retries don't count."""
    cb = CircuitBreaker(failure_threshold=2, clock=clock)
    with (
        LegacyHTTPMock() as mock,
        LegacyClient(BASE, retries=3, breaker=cb, sleep=clock.sleep) as legacy,
    ):
        for _ in range(3):
            mock.get(ORDER_URL, json=error_json("internal"), status=500)
        mock.get(ORDER_URL, json=order_json())
        legacy.get_order("ord-1")
    assert cb.consecutive_failures == 0


def test_times_opened_counts_each_opening(clock: FakeClock) -> None:
    """Opening from closed and again after a failed probe count; staying open does not."""
    cb = breaker(clock, threshold=1)
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_success()
    assert (cb.times_opened, cb.state) == (2, BreakerState.CLOSED)


def test_listeners_hear_every_change(clock: FakeClock) -> None:
    """Open, half-open (the probe), open again, half-open, closed: each with the openings."""
    heard: list[tuple[str, int]] = []
    cb = breaker(clock, threshold=1)
    cb.add_listener(lambda state, opened: heard.append((state.value, opened)))
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_failure()
    clock.now += 10
    cb.before_call()
    cb.record_success()
    assert heard == [("open", 1), ("half_open", 1), ("open", 2), ("half_open", 2), ("closed", 2)]
