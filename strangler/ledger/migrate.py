"""Create or upgrade the ledger schema on start.

v1 keeps this deliberately small: ``create_all`` (idempotent) plus a ``schema_version``
table, under a lock so that several processes starting together do not race. Alembic
will earn its place with the first change that has to alter an existing table; until
then it would add a dependency and a migrations folder for no step at all.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from strangler.exceptions import LedgerError
from strangler.ledger.schema import SCHEMA_VERSION, metadata, schema_version

__all__ = ["ensure_schema"]

# pg_advisory_xact_lock key: "strangler" in ASCII, truncated to fit a bigint.
_PG_LOCK_KEY = 0x737472616E676C


def ensure_schema(engine: sa.Engine) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` and return it.

    Raises LedgerError when the database was written by a newer strangler.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        metadata.create_all(conn, checkfirst=True)
        found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        if found is None:
            conn.execute(
                schema_version.insert().values(version=SCHEMA_VERSION, applied_at=datetime.now(UTC))
            )
            return SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger's schema is version {found}, newer than this strangler "
                f"understands ({SCHEMA_VERSION}); upgrade strangler or point "
                "STRANGLER_LEDGER_URL at another database"
            )
        return int(found)
