"""The ledger's side of a hand-back: which instant orders may still go back, and their lease.

Functions on an open connection; :class:`strangler.ledger.SqlLedger` wraps each in its
transaction and error translation (see strangler.rollout.handback for the hand-back).
An order may go back while it is routed or running on the instant path, not terminal,
not handed off, with no real (not dry-run) ``authorize_payment`` step recorded.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strangler.ledger import schema
from strangler.ledger.driver import WriteConnection
from strangler.orders import OrderStatus, Route

__all__ = ["candidates", "is_candidate", "take_lease"]

_o = schema.orders.c
_s = schema.step_results.c
_PAID_STEP = "authorize_payment"
_IN_FLIGHT = (OrderStatus.ROUTED.value, OrderStatus.RUNNING.value)


def _not_paid() -> sa.ColumnElement[bool]:
    paid = sa.exists().where(
        _s.order_id == _o.order_id,
        _s.path == Route.INSTANT.value,
        _s.step == _PAID_STEP,
        _s.dry_run == sa.false(),
    )
    return sa.and_(
        _o.path == Route.INSTANT.value,
        _o.status.in_(_IN_FLIGHT),
        _o.terminal_at.is_(None),
        _o.handoff.is_(None),
        ~paid,
    )


def candidates(conn: sa.Connection) -> list[str]:
    """The in-flight instant orders not past payment, oldest first."""
    statement = sa.select(_o.order_id).where(_not_paid()).order_by(_o.received_at)
    return list(conn.execute(statement).scalars())


def is_candidate(conn: sa.Connection, order_id: str) -> bool:
    """Whether ``order_id`` is still an in-flight instant order not past payment."""
    statement = sa.select(_o.order_id).where(_o.order_id == order_id, _not_paid())
    return conn.execute(statement).first() is not None


def take_lease(
    conn: WriteConnection, order_id: str, owner: str, *, now: datetime, expires: datetime
) -> bool:
    """Lease a candidate to ``owner`` unless someone holds it; False when not taken."""
    statement = (
        schema.orders.update()
        .where(
            _o.order_id == order_id,
            sa.or_(_o.lease_owner.is_(None), _o.lease_expires_at < now),
            _not_paid(),
        )
        .values(lease_owner=owner, lease_expires_at=expires)
    )
    return conn.execute(statement).rowcount == 1
