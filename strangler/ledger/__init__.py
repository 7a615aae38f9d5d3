"""The durable order ledger (SQLite by default, PostgreSQL by URL); see docs/ledger.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

if TYPE_CHECKING:
    from strangler.ledger.exceptions import LeaseLost
    from strangler.ledger.records import (
        Handoff,
        LeasedOrder,
        LedgerCounts,
        RolloutEvent,
        RolloutEventFields,
        default_owner,
        utc_now,
    )
    from strangler.ledger.schema import SCHEMA_VERSION
    from strangler.ledger.sql_ledger import SqlLedger, ledger_from_url

_LAZY = {
    "Handoff": "strangler.ledger.records",
    "LeaseLost": "strangler.ledger.exceptions",
    "LeasedOrder": "strangler.ledger.records",
    "LedgerCounts": "strangler.ledger.records",
    "RolloutEvent": "strangler.ledger.records",
    "RolloutEventFields": "strangler.ledger.records",
    "SCHEMA_VERSION": "strangler.ledger.schema",
    "SqlLedger": "strangler.ledger.sql_ledger",
    "default_owner": "strangler.ledger.records",
    "ledger_from_url": "strangler.ledger.sql_ledger",
    "utc_now": "strangler.ledger.records",
}

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

__getattr__ = attribute_loader(__name__, _LAZY)
