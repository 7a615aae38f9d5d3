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
from strangler.ledger.schema import SCHEMA_VERSION, comparisons, metadata, schema_version
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
                assert list(versions) == [1, 2]
                assert all(sa.inspect(conn).has_table(name) for name in _V2_TABLES)
        finally:
            ledger.close()

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


def _write_v1_database(url: str, *, version: int = 1) -> None:
    """A ledger as strangler 0.1 left it: every table but the comparisons, one order."""
    engine = create_ledger_engine(url)
    try:
        with engine.begin() as conn:
            tables = [t for t in metadata.sorted_tables if t.name not in _V2_TABLES]
            metadata.create_all(conn, tables=tables)
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
