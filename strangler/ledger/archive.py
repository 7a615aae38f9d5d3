"""The ledger's side of retention: find terminal orders past a horizon, read them, delete them.

Functions on an open connection; :class:`strangler.ledger.SqlLedger` wraps each in its
transaction and error translation (strangler.background.retention writes the archive
file). Rows are read and deleted children first: the foreign keys point from these
tables to orders (and comparisons).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strangler.ledger import moves
from strangler.ledger import schema as s
from strangler.ledger.driver import WriteConnection

__all__ = ["CHILD_TABLES", "delete_terminal", "expired", "records"]

#: The tables archived with each order, children first.
CHILD_TABLES: tuple[str, ...] = ("comparison_steps", "comparisons", "step_results", "transitions")
_CHILDREN: tuple[sa.Table, ...] = (s.comparison_steps, s.comparisons, s.step_results, s.transitions)
_o = s.orders.c


def expired(conn: sa.Connection, *, received_before: datetime, limit: int) -> list[str]:
    """Up to ``limit`` terminal orders received before ``received_before``, oldest first."""
    statement = (
        sa.select(_o.order_id)
        .where(_o.terminal_at.is_not(None), _o.received_at < received_before)
        .order_by(_o.received_at, _o.order_id)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def records(conn: sa.Connection, order_ids: Sequence[str]) -> list[dict[str, Any]]:
    """One record per order of ``order_ids`` the ledger has: its row and its children's rows.

    A record is ``{"order": row, "comparison_steps": [...], "comparisons": [...],
    "step_results": [...], "transitions": [...]}``, each row a dict of its columns;
    ``transitions`` holds the moves the orders row holds too (strangler.ledger.moves).
    """
    rows = {table.name: _grouped(conn, table, order_ids) for table in (*_CHILDREN, s.orders)}
    found = [order_id for order_id in order_ids if order_id in rows["orders"]]
    records = []
    for order_id in found:
        order = rows["orders"][order_id][0]
        children = {name: rows[name].get(order_id, []) for name in CHILD_TABLES}
        children["transitions"] = moves.complete(order, children["transitions"])
        records.append({"order": order, **children})
    return records


def delete_terminal(conn: WriteConnection, order_ids: Sequence[str]) -> None:
    """Delete these orders (only the terminal ones) and their children's rows."""
    ids = list(order_ids)
    for table in _CHILDREN:
        conn.execute(table.delete().where(table.c.order_id.in_(ids)))
    conn.execute(s.orders.delete().where(_o.order_id.in_(ids), _o.terminal_at.is_not(None)))


def _grouped(
    conn: sa.Connection, table: sa.Table, order_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    statement = sa.select(table).where(table.c.order_id.in_(list(order_ids)))
    for row in conn.execute(statement).mappings():
        grouped.setdefault(row["order_id"], []).append(dict(row))
    return grouped
