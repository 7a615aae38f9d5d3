"""Processing-time histograms read from a real ledger (SQLite, PostgreSQL) at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from strangler.ledger import SqlLedger
from strangler.orders import Decision, OrderNotification, OrderStatus, Route
from strangler.sidecar.order_durations import OrderDurations

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BOTH_DATABASES = True  # tests/unit/conftest.py runs each ledger test on PostgreSQL too


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """The ledger's clock: T0, always."""
    return lambda: T0


def finish(ledger: SqlLedger, order_id: str, path: Route, after_s: float) -> None:
    """Take an order in at T0, route it to ``path`` and fulfil it ``after_s`` later."""
    ledger.record_received(
        OrderNotification(order_id=order_id, user_guid="u", unit_id="n"), source="test"
    )
    ledger.pin_decision(order_id, Decision(path, path.value, 50, "rev", "test"))
    ledger.transition(order_id, OrderStatus.FULFILLED, at=T0 + timedelta(seconds=after_s))


def scrape(collector: OrderDurations) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The collector's samples by name and labels."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_durations_per_path_are_counted_once(ledger: SqlLedger) -> None:
    """Each terminal order lands once in its path's histogram, across repeated scrapes."""
    collector = OrderDurations(ledger)
    finish(ledger, "o-1", Route.INSTANT, 3)
    finish(ledger, "o-2", Route.LEGACY, 900)
    scrape(collector)
    finish(ledger, "o-3", Route.INSTANT, 0.2)
    samples = scrape(collector)
    instant = (("outcome", "fulfilled"), ("path", "instant"))
    legacy = (("outcome", "fulfilled"), ("path", "legacy"))
    assert samples[("strangler_order_processing_seconds_count", instant)] == 2.0
    assert samples[("strangler_order_processing_seconds_sum", instant)] == pytest.approx(
        3.2, abs=0.01
    )
    assert samples[bucket(instant, "0.5")] == 1.0
    assert samples[bucket(legacy, "600.0")] == 0.0
    assert samples[bucket(legacy, "+Inf")] == 1.0


def bucket(labels: tuple[tuple[str, str], ...], le: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The sample key of one histogram bucket."""
    return ("strangler_order_processing_seconds_bucket", tuple(sorted((*labels, ("le", le)))))


def test_orders_not_terminal_are_not_counted(ledger: SqlLedger) -> None:
    """An order still in flight has no duration yet."""
    order = OrderNotification(order_id="o-1", user_guid="u", unit_id="n")
    ledger.record_received(order, source="test")
    assert scrape(OrderDurations(ledger)) == {}
