"""The ledger's leases and roles: the dispatcher's queue of orders, one holder per role.

Functions on an open write connection; :class:`strangler.ledger.SqlLedger` wraps each in
its transaction, write lock and error translation. Every change is a conditional UPDATE
(or an upsert for a role), so two workers never hold the same order or role, and each
call is idempotent. The statements are in :mod:`strangler.ledger.statements`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strangler.ledger import pg_writes, schema, statements
from strangler.ledger.driver import WriteConnection
from strangler.ledger.records import Handoff, LeasedOrder
from strangler.orders import Decision, OrderNotification, OrderStatus, Route

__all__ = [
    "claim_due",
    "decision_of",
    "give_up_role",
    "hold_role",
    "release",
    "renew",
    "return_unstarted",
]


def claim_due(
    conn: WriteConnection, owner: str, *, limit: int, now: datetime, expires: datetime
) -> list[LeasedOrder]:
    """Lease up to ``limit`` due orders nobody holds to ``owner``, oldest due first.

    On PostgreSQL the claim is one statement, run alone in its transaction by the caller
    (autocommit), whose commit does not wait for its WAL flush (see
    :meth:`strangler.ledger.SqlLedger.claim_due` for why that is safe).
    """
    if conn.dialect.name == "postgresql" and isinstance(conn, sa.Connection):
        # On the psycopg connection underneath: see strangler.ledger.pg_writes.claim_due.
        rows = pg_writes.claim_due(conn, owner=owner, limit=limit, now=now, expires=expires)
    else:
        values = statements.params(now=now, limit=limit, owner=owner, expires=expires)
        claim = (
            statements.CLAIM_DUE_SQLITE
            if conn.dialect.name == "sqlite"
            else statements.CLAIM_DUE_UNFLUSHED
        )
        rows = [row._mapping for row in conn.execute(claim, values)]
    return [_leased(row) for row in sorted(rows, key=lambda r: r["next_attempt_at"])]


def renew(
    conn: WriteConnection, owner: str, order_ids: Sequence[str], *, expires: datetime
) -> set[str]:
    """Extend ``owner``'s leases to ``expires``; the order_ids it still holds."""
    values = statements.params(order_ids=list(order_ids), owner=owner, expires=expires)
    return set(conn.execute(statements.RENEW_LEASES, values).scalars())


def release(
    conn: WriteConnection,
    order_id: str,
    owner: str,
    *,
    done: bool,
    retry_at: datetime,
    now: datetime,
    error: str | None,
) -> bool:
    """Give up ``owner``'s lease (done, or due again at ``retry_at``); False when not held."""
    values = statements.params(
        order_id=order_id,
        owner=owner,
        needs_dispatch=not done,
        retry_at=retry_at,
        now=now,
        error=error,
    )
    return conn.execute(statements.RELEASE_LEASE, values).rowcount == 1


def return_unstarted(conn: WriteConnection, owner: str, order_ids: Sequence[str]) -> int:
    """Give back ``owner``'s unstarted claims, attempts uncounted; how many it still held."""
    values = statements.params(order_ids=list(order_ids), owner=owner)
    return conn.execute(statements.RETURN_UNSTARTED, values).rowcount


def hold_role(
    conn: WriteConnection, name: str, owner: str, *, now: datetime, expires: datetime
) -> bool:
    """Take or keep role ``name`` for ``owner`` until ``expires``; True while it has it."""
    values = {"name": name, "owner": owner, "expires": expires, "now": now}
    return conn.execute(statements.HOLD_ROLE, values).first() is not None


def give_up_role(conn: WriteConnection, name: str, owner: str, *, now: datetime) -> None:
    """Let another process take ``owner``'s role from ``now`` (nothing if not held)."""
    roles = schema.worker_leases
    statement = (
        roles.update().where(roles.c.name == name, roles.c.owner == owner).values(expires_at=now)
    )
    conn.execute(statement)


def decision_of(row: Mapping[Any, Any]) -> Decision | None:
    """The decision pinned on an orders row; None when it has none yet."""
    if row["path"] is None:
        return None
    return Decision(
        path=Route(row["path"]),
        variant=row["variant"],
        rollout=row["rollout"],
        flag_revision=row["flag_revision"],
        reason=row["decision_reason"],
    )


def _leased(row: Mapping[Any, Any]) -> LeasedOrder:
    return LeasedOrder(
        order_id=row["order_id"],
        notification=OrderNotification.from_stored(row["notification"]),
        status=OrderStatus(row["status"]),
        decision=decision_of(row),
        handoff=Handoff(row["handoff"]) if row["handoff"] else None,
        attempts=row["attempts"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
    )
