"""Ledger retention on SQLite and PostgreSQL: archive first, then delete, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.background.retention import HORIZON_KEY, Retention, read_archive
from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger
from strangler.ledger import schema as s
from strangler.orders import OrderStatus, Route
from tests.helpers import wait_until
from tests.unit.ledger.support import T0, Clock, make_decision, make_order, make_step

DAY = 86_400.0
BOTH_DATABASES = True  # tests/unit/conftest.py runs each ledger test on PostgreSQL too


def finished_order(ledger: SqlLedger, order_id: str, *, compared: bool = False) -> None:
    """An instant-path order with two steps, ended fulfilled; with a comparison if asked."""
    ledger.record_received(make_order(order_id), source="api")
    ledger.pin_decision(order_id, make_decision(Route.SHADOW))
    ledger.record_steps(
        [(make_step(order_id, "fraud_scan"), 0), (make_step(order_id, "fulfil"), 0)]
    )
    ledger.transition(order_id, OrderStatus.FULFILLED)
    if compared:
        now = T0
        with ledger.engine.begin() as conn:
            conn.execute(
                s.comparisons.insert().values(
                    order_id=order_id,
                    kind="shadow",
                    status="compared",
                    mismatch=False,
                    candidate={"fraud_scan": "pass"},
                    baseline={"fraud_scan": "pass"},
                    routed_at=now,
                    compared_at=now,
                )
            )
            conn.execute(
                s.comparison_steps.insert().values(
                    order_id=order_id,
                    kind="shadow",
                    step="fraud_scan",
                    verdict="match",
                    routed_at=now,
                )
            )


def count(ledger: SqlLedger, table: sa.Table) -> int:
    """Rows in one ledger table."""
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_terminal_orders_past_the_horizon_are_archived_then_deleted(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """Old terminal orders leave every table, land in the archive; new and open ones stay."""
    finished_order(ledger, "old-1", compared=True)
    finished_order(ledger, "old-2")
    ledger.record_received(make_order("old-open"), source="api")
    clock.advance(10 * DAY)
    finished_order(ledger, "recent")
    clock.advance(25 * DAY)
    retention = Retention(
        ledger, archive_dir=tmp_path / "archive", days=30, batch_size=1, clock=clock
    )

    run = retention.run_once()

    assert run is not None
    assert run.archived == 2
    assert run.archive is not None
    records = {record["order"]["order_id"]: record for record in read_archive(run.archive)}
    assert sorted(records) == ["old-1", "old-2"]
    assert [row["step"] for row in records["old-1"]["step_results"]] == ["fraud_scan", "fulfil"]
    assert [row["verdict"] for row in records["old-1"]["comparison_steps"]] == ["match"]
    assert records["old-1"]["order"]["status"] == "fulfilled"
    assert ledger.story("old-1") is None
    assert ledger.story("old-open") is not None
    assert ledger.story("recent") is not None
    assert (count(ledger, s.comparisons), count(ledger, s.comparison_steps)) == (0, 0)
    assert count(ledger, s.step_results) == 2
    assert ledger.get_value(HORIZON_KEY) == run.horizon.isoformat()


def test_a_second_run_finds_nothing_and_writes_no_file(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """Running again is harmless: nothing more is deleted and no empty archive appears."""
    finished_order(ledger, "old")
    clock.advance(31 * DAY)
    retention = Retention(ledger, archive_dir=tmp_path, days=30, clock=clock)
    retention.run_once()

    again = retention.run_once()

    assert again is not None
    assert (again.archived, again.archive) == (0, None)
    assert len(list(tmp_path.glob("ledger-archive-*.jsonl.gz"))) == 1


def test_a_backlog_is_taken_over_several_runs(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """At most max_orders orders go per run, oldest first, each run in its own file."""
    for index in range(5):
        finished_order(ledger, f"o-{index}")
        clock.advance(1)
    clock.advance(31 * DAY)
    retention = Retention(
        ledger, archive_dir=tmp_path, days=30, batch_size=2, max_orders=3, clock=clock
    )

    first = retention.run_once()
    clock.advance(1)
    second = retention.run_once()

    assert first is not None
    assert first.archive is not None
    assert second is not None
    assert second.archive is not None
    assert [r["order"]["order_id"] for r in read_archive(first.archive)] == ["o-0", "o-1", "o-2"]
    assert [r["order"]["order_id"] for r in read_archive(second.archive)] == ["o-3", "o-4"]
    assert count(ledger, s.orders) == 0


def test_nothing_is_deleted_when_the_archive_cannot_be_written(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """An archive directory that cannot be created stops the run before any delete."""
    finished_order(ledger, "old")
    clock.advance(31 * DAY)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the archive directory should be")
    retention = Retention(ledger, archive_dir=blocker, days=30, clock=clock)

    with pytest.raises(OSError, match="File exists"):
        retention.run_once()

    assert ledger.story("old") is not None


def test_a_database_failure_is_a_ledger_error_and_deletes_nothing(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """A table the run cannot read raises LedgerError naming the read; no archive is left."""
    finished_order(ledger, "old")
    clock.advance(31 * DAY)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE comparison_steps"))
    retention = Retention(ledger, archive_dir=tmp_path / "archive", days=30, clock=clock)

    with pytest.raises(LedgerError, match="could not read expired orders") as caught:
        retention.run_once()

    assert (caught.value.operation, caught.value.url) == ("read expired orders", ledger.url)
    assert (ledger.story("old") is not None, list((tmp_path / "archive").iterdir())) == (True, [])


def test_zero_days_keeps_everything(ledger: SqlLedger, clock: Clock, tmp_path: Path) -> None:
    """STRANGLER_RETENTION_DAYS=0 means keep for ever: no run, no horizon."""
    finished_order(ledger, "old")
    clock.advance(3650 * DAY)

    assert Retention(ledger, archive_dir=tmp_path, days=0, clock=clock).run_once() is None
    assert ledger.get_value(HORIZON_KEY) is None
    assert ledger.story("old") is not None


def test_the_horizon_never_moves_back(ledger: SqlLedger, clock: Clock, tmp_path: Path) -> None:
    """A later run with a longer retention leaves the earlier, later horizon in place."""
    finished_order(ledger, "old")
    clock.advance(100 * DAY)
    short = Retention(ledger, archive_dir=tmp_path, days=10, clock=clock).run_once()
    finished_order(ledger, "recent")
    clock.advance(100 * DAY)
    Retention(ledger, archive_dir=tmp_path, days=160, clock=clock).run_once()

    assert short is not None
    assert short.archived == 1
    assert ledger.get_value(HORIZON_KEY) == short.horizon.isoformat()


def test_a_run_that_archives_nothing_sets_no_horizon(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """On a ledger with nothing old enough, no horizon is set: reports claim no archive."""
    finished_order(ledger, "new")
    run = Retention(ledger, archive_dir=tmp_path, days=30, clock=clock).run_once()

    assert run is not None
    assert (run.archived, ledger.get_value(HORIZON_KEY)) == (0, None)


@pytest.mark.parametrize(
    ("days", "batch_size", "max_orders", "interval_s"),
    [(-1, 1, 1, 1.0), (1, 0, 1, 1.0), (1, 1, 0, 1.0), (1, 1, 1, 0.0)],
    ids=["negative-days", "zero-batch", "zero-max", "zero-interval"],
)
def test_bad_parameters_are_refused(
    ledger: SqlLedger,
    tmp_path: Path,
    days: int,
    batch_size: int,
    max_orders: int,
    interval_s: float,
) -> None:
    """Nonsense limits are a ValueError that names them."""
    with pytest.raises(ValueError, match="retention needs"):
        Retention(
            ledger,
            archive_dir=tmp_path,
            days=days,
            batch_size=batch_size,
            max_orders=max_orders,
            interval_s=interval_s,
        )


def test_the_scheduled_run_archives_and_stop_gives_the_role_up(
    ledger: SqlLedger, clock: Clock, tmp_path: Path
) -> None:
    """Started, it runs at once under the retention role; stopped, another may take it."""
    finished_order(ledger, "old")
    clock.advance(31 * DAY)
    retention = Retention(ledger, archive_dir=tmp_path, days=30, owner="first", clock=clock)

    retention.start()
    wait_until(lambda: ledger.story("old") is None, 10, "the scheduled run")
    stopped = retention.stop()

    assert stopped is True
    assert ledger.hold_role("retention", "second", seconds=60) is True
    assert len(list(tmp_path.glob("ledger-archive-*.jsonl.gz"))) == 1
