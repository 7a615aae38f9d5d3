"""Benchmark the report over a large generated ledger (SQLite, and PostgreSQL if reachable).

Generates ledger rows in bulk (executemany in batches): orders over seven days, split
50 % legacy / 30 % instant / 20 % shadow, three step_results per instant order (0.5 %
with an error), a comparison with four comparison_steps per shadow order (95 % compared,
about 1 % fraud_scan mismatches), noise comparisons for 5 % of legacy orders, and a few
rollout events. Then times ``load_report`` (every aggregate in SQL) over the whole week
and over the last day, median of ``--rounds``, then again after creating an index on
``orders.routed_at`` (rows marked "+ix"), and prints a table.

    .venv/bin/python bench/report.py [--orders 1000000] [--rounds 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from strangler.ledger import schema
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.migrate import ensure_schema
from strangler.ledger.report_queries import load_report

START = datetime(2030, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=7)
BATCH = 20_000
PG_ADMIN_URL = "postgresql+psycopg://strangler:strangler@127.0.0.1:5432/strangler"
STEPS = ("fraud_scan", "authorize_payment", "fulfill", "outcome")
WINDOWS = (("7 days", None), ("last day", START + SPAN - timedelta(days=1)))
# The index proposed for schema.py; timed with and without (the "+ix" rows).
ROUTED_INDEX = "CREATE INDEX ix_orders_routed_at ON orders (routed_at)"


def main() -> None:
    """Generate, time, print the table."""
    args = _parse_args()
    rows = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="report-bench-")))
        targets = [("sqlite", f"sqlite:///{folder / 'ledger.sqlite3'}")]
        if not args.no_postgres:
            pg = stack.enter_context(_pg_database(args.pg_url))
            if pg is not None:
                targets.append(("postgresql", pg))
        for name, url in targets:
            engine = create_ledger_engine(url)
            stack.callback(engine.dispose)
            generated_s, counts = _generate(engine, args.orders)
            for label, since in WINDOWS:
                times = _time_report(engine, since, args.rounds)
                rows.append((name, args.orders, counts, generated_s, label, times))
            with engine.begin() as conn:
                conn.execute(sa.text(ROUTED_INDEX))
            for label, since in WINDOWS:
                times = _time_report(engine, since, args.rounds)
                rows.append((name, args.orders, counts, generated_s, f"{label} +ix", times))
    _print(rows, args.rounds)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to generate")
    parser.add_argument("--rounds", type=int, default=3, help="report builds to time")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="a server to create a database on")
    args = parser.parse_args()
    if args.orders < 10 or args.rounds < 1:
        parser.error("--orders must be >= 10 and --rounds >= 1")
    return args


@contextmanager
def _pg_database(admin_url: str) -> Iterator[str | None]:
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"strangler_report_bench_{int(time.time())}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable ({exc.orig}); SQLite only")
        admin.dispose()
        yield None
        return
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _order(i: int, n: int, rng: random.Random) -> tuple[dict[str, Any], str]:
    at = START + SPAN * (i / n)
    roll = i % 10
    path = "legacy" if roll < 5 else ("instant" if roll < 8 else "shadow")
    seconds = rng.uniform(0.005, 0.05) if path == "instant" else rng.uniform(60, 1800)
    outcome = rng.choices(
        ["fulfilled", "rejected_fraud", "payment_declined", "failed"], [94, 3, 2, 1]
    )[0]
    handoff = "fallback" if path == "instant" and rng.random() < 0.01 else None
    row = {
        "order_id": f"o{i:08d}",
        "notification": {"order_id": f"o{i:08d}", "user_guid": f"u{i % 5000}", "unit_id": "x"},
        "source": "notifications",
        "status": outcome,
        "path": path,
        "variant": path,
        "rollout": 25,
        "flag_revision": "r1",
        "decision_reason": "rollout",
        "received_at": at,
        "routed_at": at + timedelta(milliseconds=2),
        "running_at": None,
        "fell_back_at": at if handoff else None,
        "terminal_at": at + timedelta(seconds=seconds),
        "updated_at": at,
        "outcome": outcome,
        "handoff": handoff,
        "dry_run_outcome": None,
        "needs_dispatch": False,
        "next_attempt_at": at,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": 1,
        "last_error": "pipeline gave up: timeout" if handoff else None,
        "legacy_status": None,
        "legacy_terminal_at": None,
        "follow_checked_at": None,
    }
    return row, path


def _steps(row: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    at = row["routed_at"]
    return [
        {
            "order_id": row["order_id"],
            "path": "instant",
            "step": step,
            "dry_run": False,
            "seq": 0,
            "decision": "ok",
            "payload": {},
            "started_at": at,
            "finished_at": at,
            "error": "gateway 503" if rng.random() < 0.005 else None,
            "recorded_at": at,
        }
        for step in STEPS[:3]
    ]


def _comparison(
    row: dict[str, Any], kind: str, rng: random.Random
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    compared = rng.random() < 0.95
    bad = compared and rng.random() < 0.01
    comparison = {
        "order_id": row["order_id"],
        "kind": kind,
        "status": "compared" if compared else "not_compared",
        "reason": None if compared else rng.choice(["dry_run_failed", "legacy_not_terminal"]),
        "mismatch": bad if compared else None,
        "candidate": {"fraud_scan": "rejected" if bad else "approved"},
        "baseline": {"fraud_scan": "approved"},
        "routed_at": row["routed_at"],
        "compared_at": row["terminal_at"],
    }
    steps = [
        {
            "order_id": row["order_id"],
            "kind": kind,
            "step": step,
            "verdict": "mismatch" if bad and step == "fraud_scan" else "match",
            "detail": "decision: 'rejected' != 'approved'"
            if bad and step == "fraud_scan"
            else None,
            "routed_at": row["routed_at"],
        }
        for step in (STEPS if compared else ())
    ]
    return comparison, steps


def _generate(engine: sa.Engine, n: int) -> tuple[float, dict[str, int]]:
    ensure_schema(engine)
    rng = random.Random(42)
    counts = dict.fromkeys(("orders", "step_results", "comparisons", "comparison_steps"), 0)
    started = time.perf_counter()
    for first in range(0, n, BATCH):
        batch: dict[str, list[dict[str, Any]]] = {key: [] for key in counts}
        for i in range(first, min(first + BATCH, n)):
            row, path = _order(i, n, rng)
            batch["orders"].append(row)
            if path == "instant":
                batch["step_results"].extend(_steps(row, rng))
            kind = "shadow" if path == "shadow" else ("noise" if i % 20 == 0 else None)
            if kind is not None:
                comparison, steps = _comparison(row, kind, rng)
                batch["comparisons"].append(comparison)
                batch["comparison_steps"].extend(steps)
        with engine.begin() as conn:
            for table in counts:
                if batch[table]:
                    _insert(conn, table, batch[table])
                    counts[table] += len(batch[table])
    with engine.begin() as conn:
        conn.execute(schema.rollout_events.insert(), _events())
        conn.execute(sa.text("ANALYZE"))
    return time.perf_counter() - started, counts


def _insert(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Bulk insert on the driver: executemany on SQLite, COPY on PostgreSQL."""
    columns = list(rows[0])
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        cursor.executemany(sql, [tuple(_sqlite_value(row[c]) for c in columns) for row in rows])
        return
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row.values()])


def _sqlite_value(value: Any) -> Any:
    """What the ledger's column types store on SQLite (naive UTC text, JSON text, 0/1)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _events() -> list[dict[str, Any]]:
    return [
        {
            "at": START + timedelta(days=day),
            "actor": "bench",
            "from_rollout": level // 2,
            "to_rollout": level,
            "reason": "bench",
            "flag_revision": f"r{day}",
        }
        for day, level in enumerate((5, 10, 25, 50))
    ]


def _time_report(engine: sa.Engine, since: datetime | None, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        load_report(engine, since=since, until=START + SPAN)
        times.append(time.perf_counter() - started)
    return times


def _print(rows: list[tuple[Any, ...]], rounds: int) -> None:
    header = (
        f"{'database':<11} {'orders':>9} {'other rows':>10} {'generate':>9} {'window':<15} "
        f"{'median':>8} {'min':>8} {'max':>8}"
    )
    print(f"report build, median of {rounds} rounds")
    print(header)
    print("-" * len(header))
    for name, orders, counts, generated_s, label, times in rows:
        other = sum(counts.values()) - counts["orders"]
        print(
            f"{name:<11} {orders:>9,} {other:>10,} {generated_s:>8.1f}s {label:<15} "
            f"{statistics.median(times):>7.2f}s {min(times):>7.2f}s {max(times):>7.2f}s"
        )


if __name__ == "__main__":
    main()
