"""The ledger's comparison store and schema migration, run on each database.

tests/unit/ledger/test_sqlite_comparisons.py runs it on SQLite and
tests/integration/test_comparisons_postgres.py on the local PostgreSQL server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from strangler.compare.config import CompareConfig
from strangler.compare.engine import compare, not_compared
from strangler.compare.records import Comparison, ComparisonKind, NotComparedReason
from strangler.compare.sides import side_from_steps
from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.schema import (
    ROLLOUT_EVENT_V3_COLUMNS,
    SCHEMA_VERSION,
    comparisons,
    metadata,
    order_durations,
    rollout_events,
    schema_version,
)
from strangler.orders import Route
from tests.unit.compare.support import batch_steps, dry_run_steps
from tests.unit.ledger.support import T0, Clock, make_decision, make_order

_V2_TABLES = ("comparisons", "comparison_steps")


def _shadow_comparison(order_id: str, *, fraud: str = "pass") -> Comparison:
    candidate = side_from_steps(
        dry_run_steps(fraud=fraud), "fulfilled" if fraud == "pass" else "rejected_fraud"
    )
    return compare(
        order_id,
        ComparisonKind.SHADOW,
        candidate,
        side_from_steps(batch_steps(), "fulfilled"),
        routed_at=T0,
        compared_at=T0 + timedelta(seconds=5),
        config=CompareConfig(),
    )


class ComparisonStoreContract:
    """Behaviour every ledger database must show for comparisons and migrations."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def ledger(self, ledger_url: str, clock: Clock) -> Iterator[SqlLedger]:
        ledger = ledger_from_url(ledger_url, clock=clock)
        yield ledger
        ledger.close()

    def _shadow_order(self, ledger: SqlLedger, order_id: str) -> None:
        ledger.record_received(make_order(order_id), source="api")
        ledger.pin_decision(order_id, make_decision(Route.SHADOW))

    def test_a_comparison_is_stored_with_its_steps(self, ledger: SqlLedger) -> None:
        """The row keeps status, mismatch, both sides and routed_at; one row per step."""
        self._shadow_order(ledger, "o-1")
        assert ledger.record_comparison(_shadow_comparison("o-1", fraud="reject")) is True
        with ledger.engine.connect() as conn:
            row = conn.execute(sa.select(comparisons)).mappings().one()
            steps = dict(
                conn.execute(sa.text("SELECT step, verdict FROM comparison_steps")).tuples().all()
            )
        assert (row["order_id"], row["kind"], row["status"], row["reason"]) == (
            "o-1",
            "shadow",
            "compared",
            None,
        )
        assert bool(row["mismatch"]) is True
        assert row["candidate"]["outcome"] == "rejected_fraud"
        assert row["baseline"]["steps"]["fulfill"] == {"decision": "fulfilled", "voucher_count": 1}
        assert steps == {"fraud_scan": "mismatch", "outcome": "mismatch"}

    def test_a_not_compared_row_keeps_its_reason(self, ledger: SqlLedger) -> None:
        """A given-up order is stored with its reason, no mismatch and no step rows."""
        self._shadow_order(ledger, "o-1")
        given_up = not_compared(
            "o-1",
            ComparisonKind.SHADOW,
            NotComparedReason.LEGACY_NOT_TERMINAL,
            routed_at=T0,
            compared_at=T0,
        )
        assert ledger.record_comparison(given_up) is True
        with ledger.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, reason, mismatch FROM comparisons")).one()
            steps = conn.execute(sa.text("SELECT count(*) FROM comparison_steps")).scalar_one()
        assert tuple(row) == ("not_compared", "legacy_not_terminal", None)
        assert steps == 0

    def test_a_second_store_changes_nothing(self, ledger: SqlLedger) -> None:
        """Storing the same order and kind again returns False and keeps the first result."""
        self._shadow_order(ledger, "o-1")
        assert ledger.record_comparison(_shadow_comparison("o-1")) is True
        assert ledger.record_comparison(_shadow_comparison("o-1", fraud="reject")) is False
        with ledger.engine.connect() as conn:
            mismatch = conn.execute(sa.text("SELECT mismatch FROM comparisons")).scalar_one()
            steps = conn.execute(sa.text("SELECT count(*) FROM comparison_steps")).scalar_one()
        assert (bool(mismatch), steps) == (False, 4)

    def test_two_concurrent_writers_store_one_row(self, ledger_url: str, clock: Clock) -> None:
        """Two ledgers (two connection pools) racing to store one comparison: one wins."""
        first, second = (ledger_from_url(ledger_url, clock=clock) for _ in range(2))
        try:
            self._shadow_order(first, "o-1")
            barrier = threading.Barrier(2)
            results: list[bool] = []

            def store(ledger: SqlLedger) -> None:
                barrier.wait()
                results.append(ledger.record_comparison(_shadow_comparison("o-1")))

            threads = [threading.Thread(target=store, args=(ledger,)) for ledger in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            with first.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT count(*) FROM comparisons")).scalar_one()
                steps = conn.execute(sa.text("SELECT count(*) FROM comparison_steps")).scalar_one()
        finally:
            first.close()
            second.close()
        assert sorted(results) == [False, True]
        assert (rows, steps) == (1, 4)

    def test_orders_due_for_comparison(self, ledger: SqlLedger) -> None:
        """Due: settled dry run with legacy terminal, or overdue; not: waiting or stored."""
        for order_id in ("ready", "waiting", "stored", "old"):
            self._shadow_order(ledger, order_id)
        ledger.record_legacy_progress("ready", [], legacy_status="fulfilled")
        ledger.record_dry_run_outcome("ready", "fulfilled")
        ledger.record_dry_run_outcome("waiting", "fulfilled")
        for order_id in ("ready", "waiting", "stored"):
            ledger.claim_due("w", limit=5, lease_seconds=30)
            ledger.release_lease(order_id, "w", done=True)
        ledger.record_comparison(_shadow_comparison("stored"))
        due = ledger.due_for_comparison(
            ComparisonKind.SHADOW, older_than=T0 - timedelta(seconds=1), limit=10
        )
        assert due == ["ready"]
        overdue = ledger.due_for_comparison(
            ComparisonKind.SHADOW, older_than=T0 + timedelta(seconds=1), limit=10
        )
        assert sorted(overdue) == ["old", "ready", "waiting"]

    def test_the_record_for_comparing_an_order(self, ledger: SqlLedger) -> None:
        """The ledger describes an order with its steps of every path, as the pairing needs."""
        self._shadow_order(ledger, "o-1")
        ledger.record_steps([(s, 0) for s in dry_run_steps() + batch_steps()])
        ledger.record_dry_run_outcome("o-1", "fulfilled")
        record = ledger.comparison_record("o-1")
        assert record is not None
        assert (record.path, record.dry_run_outcome, record.routed_at) == (
            "shadow",
            "fulfilled",
            T0,
        )
        assert len(record.candidate_steps(ComparisonKind.SHADOW)) == 4
        assert len(record.batch_steps()) == 3
        assert ledger.comparison_record("nobody") is None

    # -- migration ----------------------------------------------------------------------

    def test_a_v1_database_is_migrated(self, ledger_url: str) -> None:
        """A v1 ledger gets the comparison tables and version 2, and keeps its orders."""
        _write_v1_database(ledger_url)
        ledger = ledger_from_url(ledger_url)
        try:
            assert ledger.schema_version == SCHEMA_VERSION
            assert ledger.story("old-order") is not None
            with ledger.engine.connect() as conn:
                versions = conn.execute(
                    sa.select(schema_version.c.version).order_by(schema_version.c.version)
                ).scalars()
                assert list(versions) == list(range(1, SCHEMA_VERSION + 1))
                assert all(sa.inspect(conn).has_table(name) for name in _V2_TABLES)
        finally:
            ledger.close()

    def test_a_v2_ledger_gets_the_rollout_event_columns(self, ledger_url: str) -> None:
        """v3 adds kind, enabled, weights, stage, changed and no_evidence to old events;
        the gate's old records get their kind from their reason, the rest stay unknown."""
        _write_v1_database(ledger_url)
        ledger = ledger_from_url(ledger_url)
        try:
            old_set, old_hold = ledger.rollout_events()
        finally:
            ledger.close()
        assert (old_set.kind, old_set.changed, old_set.stage, old_set.no_evidence) == (
            None,
            None,
            None,
            False,
        )
        assert (old_set.from_rollout, old_set.to_rollout) == (0, 10)
        assert (old_hold.kind, old_hold.changed) == ("gate_hold", False)

    def test_a_version_it_cannot_migrate_is_refused(self, ledger_url: str) -> None:
        """A ledger older than the first migration step is refused with a clear message."""
        _write_v1_database(ledger_url, version=0)
        with pytest.raises(LedgerError, match="older than this strangler can migrate"):
            ledger_from_url(ledger_url)
        engine = create_ledger_engine(ledger_url)
        try:
            with engine.connect() as conn:
                assert not sa.inspect(conn).has_table("comparisons")
        finally:
            engine.dispose()


def _v2_rollout_events() -> sa.Table:
    """rollout_events as schema v1 and v2 had it (before the v3 columns)."""
    new = set(ROLLOUT_EVENT_V3_COLUMNS)
    old = sa.MetaData()
    return sa.Table(
        rollout_events.name,
        old,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in rollout_events.columns
            if c.name not in new
        ),
        sa.UniqueConstraint("at", "flag_revision", name="uq_rollout_events_change"),
    )


def _write_v1_database(url: str, *, version: int = 1) -> None:
    """A ledger as strangler 0.1 left it: every table but the comparisons, one order,
    and two rollout events (a change and a gate hold) without the v3 columns."""
    engine = create_ledger_engine(url)
    try:
        with engine.begin() as conn:
            skip = {*_V2_TABLES, rollout_events.name, order_durations.name}
            tables = [t for t in metadata.sorted_tables if t.name not in skip]
            metadata.create_all(conn, tables=tables)
            old_events = _v2_rollout_events()
            old_events.create(conn)
            conn.execute(
                old_events.insert(),
                [
                    {
                        "at": T0,
                        "actor": "ana",
                        "from_rollout": 0,
                        "to_rollout": 10,
                        "reason": "first step",
                        "flag_revision": "rev-1",
                    },
                    {
                        "at": T0 + timedelta(minutes=5),
                        "actor": "gate",
                        "from_rollout": 10,
                        "to_rollout": 10,
                        "reason": "rollout gate hold: not enough data",
                        "flag_revision": "rev-1",
                    },
                ],
            )
            conn.execute(schema_version.insert().values(version=version, applied_at=T0))
            conn.execute(
                sa.text(
                    "INSERT INTO orders (order_id, notification, source, status, received_at, "
                    "updated_at, needs_dispatch, next_attempt_at, attempts) VALUES "
                    "('old-order', '{}', 'api', 'received', :t, :t, :f, :t, 0)"
                ),
                {"t": T0.replace(tzinfo=None), "f": False},
            )
    finally:
        engine.dispose()
