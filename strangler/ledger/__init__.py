"""The durable order ledger (SQLite by default, PostgreSQL by URL); see docs/ledger.md."""

from strangler.ledger.exceptions import LeaseLost
from strangler.ledger.records import (
    Handoff,
    LeasedOrder,
    LedgerCounts,
    RolloutEvent,
    RolloutEventFields,
    default_owner,
)
from strangler.ledger.schema import SCHEMA_VERSION
from strangler.ledger.sql_ledger import SqlLedger, ledger_from_url, utc_now

__all__ = [
    "SCHEMA_VERSION",
    "Handoff",
    "LeaseLost",
    "LeasedOrder",
    "LedgerCounts",
    "RolloutEvent",
    "RolloutEventFields",
    "SqlLedger",
    "default_owner",
    "ledger_from_url",
    "utc_now",
]
