"""The processing-time histogram the ledger keeps as orders end (strangler.ledger.tally).

After a mixed workload that ends orders by every path (transition, instant finish, PostgreSQL's
one-statement finish, hand-off, the follower's legacy end, adoption), the kept histogram
equals one counted here from a full scan with the report's seconds, on SQLite and
PostgreSQL; archiving leaves it as it was; an old (v3) ledger back-fills it on upgrade.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strangler.ledger import SqlLedger, ledger_from_url, tally
from strangler.ledger.durations import ORDER_BUCKETS_S, seconds_to_terminal
from strangler.ledger.records import DurationBuckets, Handoff
from strangler.ledger.schema import order_durations, orders, schema_version
from strangler.ledger.synthetic import fill_history
from strangler.orders import Decision, OrderNotification, OrderStatus, Route

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ENDS = ("transition", "finish", "hand_off", "legacy", "adopt", "open")
BOTH_DATABASES = True  # tests/unit/conftest.py runs each ledger test on PostgreSQL too
OUTCOMES = (OrderStatus.FULFILLED, OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED)


class Clock:
    """A ledger clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """This module's clock, at its own T0."""
    return Clock()


Histogram = dict[tuple[str, str], tuple[int, float, tuple[int, ...]]]


def expected(
    ledger: SqlLedger, base: Histogram | None = None, order_ids: list[str] | None = None
) -> Histogram:
    """``base`` plus the histogram of the terminal orders (of ``order_ids``), by a full scan.

    The seconds are the report's (durations.seconds_to_terminal, in SQL: on SQLite a float
    sum that can land an ulp off an exact bound); the buckets are counted here.
    """
    counts: dict[tuple[str, str], list[int]] = {}
    totals: dict[tuple[str, str], float] = {}
    with ledger.engine.connect() as conn:
        statement = sa.select(
            orders.c.path, orders.c.status, seconds_to_terminal(conn.dialect.name)
        ).where(orders.c.terminal_at.is_not(None))
        if order_ids is not None:
            statement = statement.where(orders.c.order_id.in_(order_ids))
        rows = conn.execute(statement).all()
    for path, status, seconds in rows:
        key = (path or "undecided", status)
        bucket = bisect.bisect_left(ORDER_BUCKETS_S, seconds)
        counts.setdefault(key, [0] * (len(ORDER_BUCKETS_S) + 1))[bucket] += 1
        totals[key] = totals.get(key, 0.0) + seconds
    result = dict(base or {})
    for key, n in counts.items():
        count, total, at_most = result.get(key, (0, 0.0, (0,) * len(ORDER_BUCKETS_S)))
        cumulative = [sum(n[: i + 1]) for i in range(len(ORDER_BUCKETS_S))]
        result[key] = (
            count + sum(n),
            total + totals[key],
            tuple(a + b for a, b in zip(at_most, cumulative, strict=True)),
        )
    return result


def kept(histogram: list[DurationBuckets]) -> Histogram:
    return {(b.path, b.outcome): (b.count, b.total_s, b.at_most) for b in histogram}


def assert_same(got: Histogram, want: Histogram) -> None:
    assert got.keys() == want.keys()
    for key, (count, total, at_most) in want.items():
        assert got[key][0] == count, key
        assert got[key][2] == at_most, key
        assert got[key][1] == pytest.approx(total, rel=1e-12, abs=1e-9), key


def end_order(
    ledger: SqlLedger, clock: Clock, n: int, end: str, after_us: int, outcome: OrderStatus
) -> str:
    """Take order ``n`` in and end it by ``end``, ``after_us`` microseconds later."""
    order_id = f"o-{n}-{uuid.uuid4().hex[:6]}"
    order = OrderNotification(order_id=order_id, user_guid="u", unit_id="n")
    at = clock.now + timedelta(microseconds=after_us)
    if end == "adopt":
        decision = Decision(Route.LEGACY, "legacy", 50, "rev", "test")
        ledger.adopt(
            order,
            decision,
            [],
            source="reconciled",
            legacy_status=outcome.value,
            legacy_terminal_at=at,
        )
        return order_id
    ledger.record_received(order, source="test")
    if end == "open":
        return order_id
    path = Route.LEGACY if end == "legacy" else Route.INSTANT
    ledger.pin_decision(order_id, Decision(path, path.value, 50, "rev", "test"))
    if end == "transition":
        ledger.transition(order_id, outcome, at=at)
    elif end == "finish":
        claimed = ledger.claim_due("w", limit=100, lease_seconds=60)
        assert order_id in {c.order_id for c in claimed}
        assert ledger.finish(order_id, outcome, [], at=at, release_owner="w")
    elif end == "hand_off":
        ledger.record_legacy_progress(
            order_id, [], legacy_status=outcome.value, legacy_terminal_at=at
        )
        ledger.hand_off(order_id, Handoff.FALLBACK, reason="test", at=at)
    else:
        ledger.record_legacy_progress(
            order_id, [], legacy_status=outcome.value, legacy_terminal_at=at
        )
    return order_id


workloads = st.lists(
    st.tuples(
        st.sampled_from(ENDS),
        # Around every bound, fractions near .9995 (where SQLite's date functions round).
        st.one_of(
            st.integers(0, 4_000_000_000),
            st.sampled_from(ORDER_BUCKETS_S).map(lambda b: int(b * 1e6)),
            st.sampled_from(ORDER_BUCKETS_S).map(lambda b: int(b * 1e6) + 1),
        ),
        st.sampled_from(OUTCOMES),
        st.sampled_from((0, 999_500, 999_999, 123_456)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(workload=workloads)
def test_kept_histogram_is_the_rows_histogram(
    ledger: SqlLedger, clock: Clock, workload: list[tuple[str, int, OrderStatus, int]]
) -> None:
    """Every way of ending an order is counted once, with the report's seconds."""
    # Examples share the ledger: what earlier ones ended is archived, and stays counted.
    before = kept(ledger.duration_histogram())
    ended = []
    for n, (end, after_us, outcome, received_us) in enumerate(workload):
        clock.now = T0 + timedelta(seconds=n, microseconds=received_us)
        ended.append(end_order(ledger, clock, n, end, after_us, outcome))
    want = expected(ledger, before, ended)

    assert_same(kept(ledger.duration_histogram()), want)
    # Archiving ends nothing and takes nothing back.
    ledger.delete_terminal(ended)
    assert_same(kept(ledger.duration_histogram()), want)


def test_ending_again_counts_once(ledger: SqlLedger, clock: Clock) -> None:
    """A repeated end (idempotent writes) does not count the order twice."""
    order_id = end_order(ledger, clock, 0, "transition", 2_000_000, OrderStatus.FULFILLED)
    ledger.transition(order_id, OrderStatus.FULFILLED, at=T0 + timedelta(seconds=9))
    ledger.transition(order_id, OrderStatus.FAILED, at=T0 + timedelta(seconds=9))
    (only,) = ledger.duration_histogram()
    assert (only.path, only.outcome, only.count, only.total_s) == ("instant", "fulfilled", 1, 2.0)


def test_an_old_ledger_back_fills_on_upgrade(tmp_path: Path) -> None:
    """A v3 ledger (no kept histogram, the old status index) gets one from its terminal
    orders, then keeps it; and the status index becomes the counts' index."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    engine = sa.create_engine(url)
    fill_history(engine, 500, until=T0)
    with engine.begin() as conn:
        for trigger in ("orders_tally_insert", "orders_tally_end"):
            conn.execute(sa.text(f"DROP TRIGGER {trigger}"))
        order_durations.drop(conn)
        conn.execute(schema_version.update().values(version=3))
        conn.execute(sa.text("DROP INDEX ix_orders_counts"))
        conn.execute(sa.text("CREATE INDEX ix_orders_status ON orders (status)"))
    engine.dispose()
    clock = Clock()
    ledger = ledger_from_url(url, clock=clock)
    try:
        want = expected(ledger)
        assert sum(count for count, _, _ in want.values()) == 500
        indexes = {index["name"] for index in sa.inspect(ledger.engine).get_indexes("orders")}
        assert "ix_orders_counts" in indexes
        assert "ix_orders_status" not in indexes
        assert_same(kept(ledger.duration_histogram()), want)
        end_order(ledger, clock, 1, "transition", 700_000, OrderStatus.FULFILLED)
        assert_same(kept(ledger.duration_histogram()), expected(ledger))
    finally:
        ledger.close()


@pytest.mark.needs_postgres
def test_postgresql_writers_add_to_their_own_shard(pg_url: str) -> None:
    """Each backend adds to its own rows; the read sums them."""
    ledgers = [ledger_from_url(pg_url, clock=Clock()) for _ in range(2)]
    try:
        for n, ledger in enumerate(ledgers):
            end_order(ledger, Clock(), n, "transition", 300_000, OrderStatus.FULFILLED)
        with ledgers[0].engine.connect() as conn:
            shards = conn.execute(sa.select(order_durations.c.shard)).scalars().all()
        assert all(0 <= shard < tally.SHARDS for shard in shards)
        (both,) = ledgers[0].duration_histogram()
        assert both.count == 2
    finally:
        for ledger in ledgers:
            ledger.close()
