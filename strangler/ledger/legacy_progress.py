"""The ledger's side of following the legacy app: which orders to look for, what it reported.

Functions on an open connection; :class:`strangler.ledger.SqlLedger` wraps each in its
transaction and error translation, and ends an order the legacy app reports terminal
(its status moves are SqlLedger's). "Followed" orders are those the batch jobs run for
us: legacy or shadow path, or handed off (:data:`strangler.ledger.statements.FOLLOWED`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strangler.ledger import schema, statements
from strangler.ledger.driver import WriteConnection

__all__ = [
    "followed_open",
    "known_orders",
    "mark_checked",
    "mark_seen",
    "open_orders",
    "stale_followed",
    "unknown_to_legacy",
]

_orders = schema.orders
_o = _orders.c


def open_orders(conn: sa.Connection, order_ids: Sequence[str]) -> set[str]:
    """Which of ``order_ids`` the ledger has and are not terminal yet."""
    found = conn.execute(statements.OPEN_ORDERS, statements.params(order_ids=list(order_ids)))
    return set(found.scalars())


def known_orders(conn: sa.Connection, order_ids: Sequence[str]) -> set[str]:
    """Which of ``order_ids`` the ledger has, whatever their status."""
    statement = sa.select(_o.order_id).where(_o.order_id.in_(list(order_ids)))
    return set(conn.execute(statement).scalars())


def followed_open(conn: sa.Connection, order_ids: Sequence[str]) -> set[str]:
    """Which of ``order_ids`` the batch jobs run for us and are not terminal yet."""
    statement = sa.select(_o.order_id).where(
        _o.order_id.in_(list(order_ids)), _o.terminal_at.is_(None), statements.FOLLOWED
    )
    return set(conn.execute(statement).scalars())


def stale_followed(
    conn: sa.Connection, *, never_seen_before: datetime, seen_before: datetime, limit: int
) -> list[str]:
    """Followed open orders to look up one by one, least recently seen first."""
    checked = _o.follow_checked_at
    due = sa.or_(
        sa.and_(checked.is_(None), _o.routed_at < never_seen_before),
        checked < seen_before,
    )
    last_seen = sa.func.coalesce(checked, _o.routed_at)
    statement = (
        sa.select(_o.order_id)
        .where(_o.terminal_at.is_(None), statements.FOLLOWED, due)
        .order_by(last_seen)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def mark_seen(
    conn: WriteConnection,
    order_id: str,
    *,
    now: datetime,
    legacy_status: str,
    legacy_terminal_at: datetime | None,
) -> None:
    """Keep the legacy app's status (and terminal time) with the order."""
    seen = statements.params(
        order_id=order_id,
        now=now,
        legacy_status=legacy_status,
        legacy_terminal_at=legacy_terminal_at,
    )
    conn.execute(statements.LEGACY_SEEN, seen)


def unknown_to_legacy(
    conn: sa.Connection, *, received_before: datetime, limit: int
) -> tuple[int, list[str]]:
    """Open orders received before ``received_before`` with no legacy status: how many,
    and the first ``limit`` ids, oldest first."""
    unseen = sa.and_(
        _o.terminal_at.is_(None),
        _o.legacy_status.is_(None),
        _o.received_at < received_before,
    )
    count = conn.execute(sa.select(sa.func.count()).where(unseen)).scalar_one()
    ids = conn.execute(
        sa.select(_o.order_id).where(unseen).order_by(_o.received_at).limit(limit)
    ).scalars()
    return int(count), list(ids)


def mark_checked(
    conn: WriteConnection, order_ids: Sequence[str], *, now: datetime, note: str | None
) -> None:
    """Note that the follower looked for these orders (``note`` becomes last_error)."""
    values: dict[str, Any] = {"follow_checked_at": now}
    if note is not None:
        values["last_error"] = note
    conn.execute(_orders.update().where(_o.order_id.in_(list(order_ids))).values(values))
