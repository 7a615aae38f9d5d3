"""/metrics shows what an operator alerts on: backlog, in-flight orders, gate, roles, shares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strangler.flags.file import FlagDefinition
from strangler.ledger import RolloutEvent, SqlLedger, ledger_from_url
from strangler.ledger.ops_queries import HEARTBEAT_KEYS
from strangler.orders import Route
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.readiness import Readiness
from tests.unit.ledger.comparisons_contract import _shadow_comparison
from tests.unit.ledger.support import T0, Clock, make_decision, make_order
from tests.unit.sidecar.fakes import FakeFlags, FakeLedger

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def clock() -> Clock:
    """The ledger's clock, at T0."""
    return Clock(T0)


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[SqlLedger]:
    """A SQLite ledger on ``clock``."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock=clock)
    yield ledger
    ledger.close()


class DefinedFlags(FakeFlags):
    """A flag source that shows its definition, as the SDK sources do."""

    def __init__(self, definition: FlagDefinition | None) -> None:
        self._definition = definition

    def definition(self) -> FlagDefinition | None:
        return self._definition


def scrape(metrics: SidecarMetrics) -> Samples:
    """Every sample of one scrape, by name and sorted labels."""
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def watching(ledger: SqlLedger | FakeLedger, flags: FakeFlags | None = None) -> SidecarMetrics:
    """Metrics watching ``ledger`` and ``flags``."""
    metrics = SidecarMetrics()
    metrics.watch(ledger, flags or FakeFlags())
    return metrics


def test_backlog_counts_unrouted_orders_and_ages_the_oldest(
    ledger: SqlLedger, clock: Clock
) -> None:
    """Two orders wait to be routed; the oldest came 30 s ago; a routed one is not backlog."""
    ledger.record_received(make_order("o-1"), source="api")
    clock.advance(20)
    ledger.record_received(make_order("o-2"), source="api")
    ledger.record_received(make_order("o-3"), source="api")
    ledger.pin_decision("o-3", make_decision(Route.INSTANT))
    clock.advance(10)

    samples = scrape(watching(ledger))

    assert samples[("strangler_routing_backlog_orders", ())] == 2
    assert samples[("strangler_routing_backlog_oldest_age_seconds", ())] == 30


def test_an_empty_backlog_is_zero_orders_of_age_zero(ledger: SqlLedger) -> None:
    """With nothing waiting both gauges are exported at 0, so rules see a value."""
    samples = scrape(watching(ledger))

    assert samples[("strangler_routing_backlog_orders", ())] == 0
    assert samples[("strangler_routing_backlog_oldest_age_seconds", ())] == 0


def test_in_flight_orders_per_path_with_the_oldest_age(ledger: SqlLedger, clock: Clock) -> None:
    """Open routed orders count per path; every path is exported, at 0 when empty."""
    for order_id, path in (("o-1", Route.SHADOW), ("o-2", Route.SHADOW), ("o-3", Route.LEGACY)):
        ledger.record_received(make_order(order_id), source="api")
        ledger.pin_decision(order_id, make_decision(path))
        clock.advance(5)

    samples = scrape(watching(ledger))

    in_flight = {
        path: samples[("strangler_orders_in_flight", (("path", path),))]
        for path in ("legacy", "instant", "shadow")
    }
    oldest = {
        path: samples[("strangler_orders_in_flight_oldest_age_seconds", (("path", path),))]
        for path in ("legacy", "instant", "shadow")
    }
    assert in_flight == {"legacy": 1, "instant": 0, "shadow": 2}
    assert oldest == {"legacy": 5, "instant": 0, "shadow": 15}


def gate_event(ledger: SqlLedger, clock: Clock, decision: str) -> None:
    """Record one gate round as ``strangler rollout advance`` does."""
    ledger.record_rollout_event(
        RolloutEvent(
            at=clock.advance(1),
            actor="ci",
            from_rollout=5,
            to_rollout=5,
            reason=f"rollout gate {decision}: because",
            flag_revision="rev-1",
        )
    )


def test_gate_decisions_count_by_decision_from_the_rollout_events(
    ledger: SqlLedger, clock: Clock
) -> None:
    """Holds, a failure and a rollback are counted; never-taken decisions show 0; other
    rollout changes are not gate decisions."""
    for decision in ("hold", "hold", "fail", "roll_back"):
        gate_event(ledger, clock, decision)
    ledger.record_rollout_event(RolloutEvent(clock.advance(1), "alice", 5, 10, "by hand", "rev-2"))

    samples = scrape(watching(ledger))

    counts = {
        decision: samples[("strangler_gate_decisions_total", (("decision", decision),))]
        for decision in ("advance", "hold", "fail", "roll_back")
    }
    last = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "strangler_gate_last_decision_timestamp_seconds"
    }
    assert counts == {"advance": 0, "hold": 2, "fail": 1, "roll_back": 1}
    assert last == {
        "hold": (T0 + timedelta(seconds=2)).timestamp(),
        "fail": (T0 + timedelta(seconds=3)).timestamp(),
        "roll_back": (T0 + timedelta(seconds=4)).timestamp(),
    }


def test_role_heartbeats_are_timestamps(ledger: SqlLedger, clock: Clock) -> None:
    """The follower's and reconciler's last successful passes are Unix timestamps."""
    ledger.set_value(HEARTBEAT_KEYS["follower"], "ignored")
    clock.advance(7)
    ledger.set_value(HEARTBEAT_KEYS["reconciler"], "ignored")

    samples = scrape(watching(ledger))

    name = "strangler_role_last_success_timestamp_seconds"
    assert samples[(name, (("role", "follower"),))] == T0.timestamp()
    assert samples[(name, (("role", "reconciler"),))] == T0.timestamp() + 7


def test_compared_steps_of_the_last_hour_by_verdict(ledger: SqlLedger, clock: Clock) -> None:
    """A shadow order whose fraud scan differed counts per step and verdict, for an hour."""
    ledger.record_received(make_order("o-1"), source="api")
    ledger.pin_decision("o-1", make_decision(Route.SHADOW))
    ledger.record_comparison(_shadow_comparison("o-1", fraud="reject"))
    name = "strangler_comparison_steps_last_hour"
    labels = (("kind", "shadow"), ("step", "fraud_scan"), ("verdict", "mismatch"))
    metrics = watching(ledger)

    within = scrape(metrics)
    clock.advance(3601)
    after = scrape(metrics)

    assert within[(name, labels)] == 1
    assert (name, labels) not in after


@pytest.mark.parametrize(
    ("enabled", "rollout", "weights", "expected"),
    [
        (True, 50, {"instant": 200, "shadow": 800}, (0, 0.1, 0.4)),
        (True, 100, {"instant": 1000}, (0, 1.0, 0.0)),
        (False, 50, {"instant": 200, "shadow": 800}, (1, 0.0, 0.0)),
    ],
    ids=["split", "all-instant", "killed"],
)
def test_rollout_shares_and_the_kill_switch(
    enabled: bool, rollout: int, weights: dict[str, int], expected: tuple[int, float, float]
) -> None:
    """The share on each path is rollout x variant weight, 0 when the flag is killed."""
    definition = FlagDefinition("flag", enabled, rollout, weights, "rev-1")

    samples = scrape(watching(FakeLedger(), DefinedFlags(definition)))

    share = "strangler_rollout_share_ratio"
    assert expected == (
        samples[("strangler_flag_killed", ())],
        samples[(share, (("path", "instant"),))],
        samples[(share, (("path", "shadow"),))],
    )


def test_no_shares_before_the_flag_is_loaded() -> None:
    """Without a loaded definition there is no share to report (not a false 0)."""
    samples = scrape(watching(FakeLedger(), DefinedFlags(None)))

    assert not [key for key in samples if key[0].startswith("strangler_rollout_share")]


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "not-writable"])
def test_readiness_checks_are_gauges(writable: bool) -> None:
    """Each readyz check is 1 when it passes; an unwritable ledger shows as 0."""
    ledger = FakeLedger()
    ledger.broken = not writable
    metrics = SidecarMetrics()
    metrics.watch(
        ledger,
        FakeFlags(),
        readiness=Readiness(ledger, FakeFlags(), "http://u", probe=lambda _: None),
    )

    samples = scrape(metrics)

    checks = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "strangler_readiness_ok"
    }
    assert checks == {"flags": 1, "ledger": int(writable), "upstream": 1}


def test_the_intake_missed_counter_starts_at_zero() -> None:
    """The first miss must be an increase, so the counter is exported before any miss."""
    samples = scrape(watching(FakeLedger()))

    assert samples[("strangler_intake_missed_total", (("source", "proxy"),))] == 0


def test_the_wal_size_is_shown_for_a_sqlite_file(ledger: SqlLedger) -> None:
    """The -wal file's size is a gauge, read at each scrape."""
    database = ledger.sqlite_file
    assert database is not None
    wal = Path(f"{database}-wal")
    ledger.record_received(make_order("o-1"), source="api")
    first = scrape(watching(ledger))[("strangler_ledger_wal_bytes", ())]
    assert first == wal.stat().st_size > 0
    for number in range(2, 200):
        ledger.record_received(make_order(f"o-{number}"), source="api")
    second = scrape(watching(ledger))[("strangler_ledger_wal_bytes", ())]
    assert second == wal.stat().st_size > first


def test_no_wal_size_off_a_sqlite_file() -> None:
    """A ledger with no SQLite file (the fake, PostgreSQL) shows no WAL gauge."""
    names = {name for name, _ in scrape(watching(FakeLedger()))}
    assert "strangler_ledger_wal_bytes" not in names
