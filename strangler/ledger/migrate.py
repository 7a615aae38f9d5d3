"""Create or upgrade the ledger schema on start, or refuse a database it cannot use.

Under a lock (``pg_advisory_xact_lock`` on PostgreSQL; SQLite's write lock), so that
several processes starting together do not race: a new database gets every table and
the current version; an older one is brought up one version at a time by the steps in
:data:`MIGRATIONS`, each recorded in ``schema_version``; a newer one, or one older than
the first step knows, is refused with a message saying what to do. Every step so far
only adds tables, nullable columns or triggers, or changes what is written from then on;
Alembic will earn its place with the first step that rewrites one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType

import sqlalchemy as sa
import structlog

from strangler.exceptions import LedgerError
from strangler.ledger import tally
from strangler.ledger.engine import BUSY_TIMEOUT_MS, display_url
from strangler.ledger.schema import (
    ROLLOUT_EVENT_V3_COLUMNS,
    SCHEMA_VERSION,
    comparison_steps,
    comparisons,
    metadata,
    order_durations,
    orders,
    rollout_events,
    schema_version,
)

__all__ = ["MIGRATIONS", "MIGRATION_WAIT_MS", "ensure_schema"]

#: How long a starting process waits on SQLite for another one's migration (5 minutes).
MIGRATION_WAIT_MS = 300_000

# pg_advisory_xact_lock key: "strangler" in ASCII, truncated to fit a bigint.
_PG_LOCK_KEY = 0x737472616E676C

_log = structlog.get_logger()


def _v1_to_v2(conn: sa.Connection) -> None:
    """v2 adds the shadow comparisons: ``comparisons`` and ``comparison_steps``."""
    comparisons.create(conn, checkfirst=True)
    comparison_steps.create(conn, checkfirst=True)


def _v2_to_v3(conn: sa.Connection) -> None:
    """v3 records what each rollout change was: kind, enabled, weights, stage, evidence.

    Older events get what their reason says: the gate's own records start "rollout gate
    <decision>"; a hold or a failure changed nothing. The rest stay NULL (unknown).
    """
    table = rollout_events.name
    present = {column["name"] for column in sa.inspect(conn).get_columns(table)}
    for name, type_ in ROLLOUT_EVENT_V3_COLUMNS.items():
        if name not in present:
            kind = type_.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
    events = rollout_events
    for decision, kind in _GATE_KINDS.items():
        conn.execute(
            events.update()
            .where(events.c.kind.is_(None), events.c.reason.like(f"rollout gate {decision}:%"))
            .values(kind=kind, changed=kind in ("gate_advance", "gate_rollback"))
        )


def _v3_to_v4(conn: sa.Connection) -> None:
    """v4 keeps the processing-time histogram as orders end (strangler.ledger.tally),
    and widens ix_orders_status into ix_orders_counts, which SqlLedger.counts() reads alone.

    ``order_durations`` starts from the terminal orders present, and the triggers keep
    it from then on; both in this transaction, which holds off every writer, so no order
    is missed or counted twice. Orders archived before the upgrade are not counted.
    """
    order_durations.create(conn, checkfirst=True)
    tally.install_triggers(conn)
    tally.backfill(conn)
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_orders_status"))
    _index(orders, "ix_orders_counts").create(conn, checkfirst=True)


def _v4_to_v5(conn: sa.Connection) -> None:
    """v5 writes no transitions row for a move the orders row holds (strangler.ledger.moves).

    Nothing to change in the data: the rows written before stay and readers take them
    first. The version tells an older strangler, which reads the table alone, that this
    ledger is not its to open.
    """


def _index(table: sa.Table, name: str) -> sa.Index:
    return next(index for index in table.indexes if index.name == name)


_GATE_KINDS = {
    "advance": "gate_advance",
    "roll_back": "gate_rollback",
    "hold": "gate_hold",
    "fail": "gate_fail",
}

# The step that brings a database at version N to N + 1.
MIGRATIONS: Mapping[int, Callable[[sa.Connection], None]] = MappingProxyType(
    {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}
)


def ensure_schema(engine: sa.Engine) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` and return it.

    Raises LedgerError when the database was written by a newer strangler, or is older
    than any version this one can migrate from.
    """
    with engine.connect() as conn, _waiting_for_migrations(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        found = _version(conn)
        if found is None:
            metadata.create_all(conn, checkfirst=True)
            tally.install_triggers(conn)
            _record(conn, SCHEMA_VERSION)
            return SCHEMA_VERSION
        _check_migratable(found, display_url(engine.url))
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
            _record(conn, version + 1)
            _log.info("ledger_schema_migrated", from_version=version, to_version=version + 1)
        metadata.create_all(conn, checkfirst=True)
        return SCHEMA_VERSION


@contextmanager
def _waiting_for_migrations(conn: sa.Connection) -> Iterator[None]:
    """On SQLite, wait up to MIGRATION_WAIT_MS for the write lock, then the usual timeout.

    Processes starting together each run this; one migrates (on a big ledger, a step
    may take seconds: v4's back-fill took 12 s on 1M orders) while the others wait for
    its lock, longer than a write's busy timeout. PostgreSQL's advisory lock waits anyway.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None  # a checked-out connection has its driver connection
    raw.execute(f"PRAGMA busy_timeout = {MIGRATION_WAIT_MS}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _version(conn: sa.Connection) -> int | None:
    """The database's schema version; None for a new database (no version recorded)."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return None
    found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return None if found is None else int(found)


def _check_migratable(found: int, url: str) -> None:
    if found > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger's schema is version {found}, newer than this strangler "
            f"understands ({SCHEMA_VERSION}); upgrade strangler or point "
            "STRANGLER_LEDGER_URL at another database",
            operation="migrate the schema",
            url=url,
        )
    missing = [version for version in range(found, SCHEMA_VERSION) if version not in MIGRATIONS]
    if missing:
        raise LedgerError(
            f"the ledger's schema is version {found}, older than this strangler can "
            f"migrate (it migrates from version {min(MIGRATIONS)} to {SCHEMA_VERSION}); "
            "migrate it with the strangler release that wrote it, or point "
            "STRANGLER_LEDGER_URL at a new database",
            operation="migrate the schema",
            url=url,
        )


def _record(conn: sa.Connection, version: int) -> None:
    conn.execute(schema_version.insert().values(version=version, applied_at=datetime.now(UTC)))
