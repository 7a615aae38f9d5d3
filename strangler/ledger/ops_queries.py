"""What an operator alerts on, read from the ledger in one read-only snapshot.

Three aggregate queries, each bounded by what it must look at, never by the ledger's
size: the open orders (the ``ix_orders_open`` partial index: only orders not yet
terminal), the gate's decisions (``rollout_events``: one row per gate round or rollout
change) with the background roles' heartbeats (a few ``kv`` rows), and the shadow and
noise comparisons of the orders routed in the last :data:`COMPARISON_WINDOW` (the
``ix_comparisons_window`` range, then ``comparison_steps`` by primary key).

Gate decisions are recognised by the reason ``strangler rollout advance`` writes with
each round: ``rollout gate <decision>: ...`` (see strangler.rollout.gate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from strangler.ledger import schema
from strangler.orders import OrderStatus

__all__ = [
    "COMPARISON_WINDOW",
    "GATE_DECISIONS",
    "GATE_REASON_PREFIX",
    "HEARTBEAT_KEYS",
    "GateTally",
    "OpenLoad",
    "OpsFigures",
    "load_ops_figures",
]

#: The gate's decisions, as ``strangler rollout advance`` names them.
GATE_DECISIONS = ("advance", "hold", "fail", "roll_back")
#: How a gate round's rollout event reason begins: ``rollout gate <decision>: <why>``.
GATE_REASON_PREFIX = "rollout gate "
#: kv rows a background role rewrites after each successful pass (value: ISO time).
HEARTBEAT_KEYS = {"follower": "legacy_follower.last_pass", "reconciler": "reconciler.last_pass"}
#: How far back the comparison counts look (by the orders' routed_at).
COMPARISON_WINDOW = timedelta(hours=1)
UNROUTED = "undecided"

_orders = schema.orders


@dataclass(frozen=True, slots=True)
class OpenLoad:
    """Orders not yet terminal in one group, and when the oldest of them was received."""

    orders: int
    oldest_received_at: datetime | None


@dataclass(frozen=True, slots=True)
class GateTally:
    """How often the gate decided one way, and when it last did."""

    count: int
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpsFigures:
    """The ledger's alerting figures at one moment.

    ``unrouted`` are orders received and not yet routed; ``in_flight`` maps each routed
    path to its orders not yet terminal. ``gate`` has every decision of
    :data:`GATE_DECISIONS` (count 0 when never taken). ``heartbeats`` maps a role of
    :data:`HEARTBEAT_KEYS` to its last successful pass (absent: never). ``compared_steps``
    maps (kind, step, verdict) to the steps compared for orders routed since
    ``compared_since``. ``at`` is when they were read, by the ledger's clock.
    """

    unrouted: OpenLoad
    in_flight: Mapping[str, OpenLoad]
    gate: Mapping[str, GateTally]
    heartbeats: Mapping[str, datetime]
    compared_steps: Mapping[tuple[str, str, str], int]
    compared_since: datetime
    at: datetime

    def age_s(self, load: OpenLoad) -> float:
        """Seconds from the oldest order's intake in ``load`` to ``at`` (0 without one)."""
        if load.oldest_received_at is None:
            return 0.0
        return max((self.at - load.oldest_received_at).total_seconds(), 0.0)


def load_ops_figures(conn: sa.Connection, *, now: datetime) -> OpsFigures:
    """Read the figures on ``conn`` (the caller opens it read-only); raises SQLAlchemyError."""
    unrouted = OpenLoad(0, None)
    in_flight: dict[str, OpenLoad] = {}
    for row in conn.execute(_OPEN_ORDERS):
        load = OpenLoad(int(row.n), row.oldest)
        if row.status == OrderStatus.RECEIVED.value:
            unrouted = _merged(unrouted, load)
        if row.path != UNROUTED:
            in_flight[row.path] = _merged(in_flight.get(row.path, OpenLoad(0, None)), load)
    since = now - COMPARISON_WINDOW
    return OpsFigures(
        unrouted=unrouted,
        in_flight=in_flight,
        gate=_gate_tallies(conn),
        heartbeats={_ROLE_OF[row.name]: row.updated_at for row in conn.execute(_HEARTBEATS)},
        compared_steps={
            (row.kind, row.step, row.verdict): int(row.n)
            for row in conn.execute(_COMPARED_STEPS, {"since": since})
        },
        compared_since=since,
        at=now,
    )


def _merged(a: OpenLoad, b: OpenLoad) -> OpenLoad:
    times = [t for t in (a.oldest_received_at, b.oldest_received_at) if t is not None]
    return OpenLoad(a.orders + b.orders, min(times) if times else None)


def _gate_tallies(conn: sa.Connection) -> dict[str, GateTally]:
    tallies = {decision: GateTally(0, None) for decision in GATE_DECISIONS}
    for row in conn.execute(_GATE_DECISIONS):
        tallies[row.decision] = GateTally(int(row.n), row.last_at)
    return tallies


def _open_orders() -> sa.Select[Any]:
    path = sa.func.coalesce(_orders.c.path, UNROUTED)
    return (
        sa.select(
            path.label("path"),
            _orders.c.status,
            sa.func.count().label("n"),
            sa.func.min(_orders.c.received_at).label("oldest"),
        )
        .where(_orders.c.terminal_at.is_(None))
        .group_by(path, _orders.c.status)
    )


def _gate_decisions() -> sa.Select[Any]:
    table = schema.rollout_events
    decision = sa.case(
        *(
            (table.c.reason.startswith(f"{GATE_REASON_PREFIX}{name}:", autoescape=True), name)
            for name in GATE_DECISIONS
        ),
        else_=None,
    ).label("decision")
    return (
        sa.select(decision, sa.func.count().label("n"), sa.func.max(table.c.at).label("last_at"))
        .where(table.c.reason.startswith(GATE_REASON_PREFIX, autoescape=True))
        .group_by(decision)
        .having(decision.is_not(None))
    )


def _compared_steps() -> sa.Select[Any]:
    compared = schema.comparisons
    steps = schema.comparison_steps
    joined = compared.join(
        steps, sa.and_(steps.c.order_id == compared.c.order_id, steps.c.kind == compared.c.kind)
    )
    return (
        sa.select(steps.c.kind, steps.c.step, steps.c.verdict, sa.func.count().label("n"))
        .select_from(joined)
        .where(
            compared.c.kind.in_(("shadow", "noise")),
            compared.c.routed_at >= sa.bindparam("since", type_=schema.UTCDateTime),
        )
        .group_by(steps.c.kind, steps.c.step, steps.c.verdict)
    )


_OPEN_ORDERS = _open_orders()
_GATE_DECISIONS = _gate_decisions()
_HEARTBEATS = sa.select(schema.kv.c.name, schema.kv.c.updated_at).where(
    schema.kv.c.name.in_(HEARTBEAT_KEYS.values())
)
_ROLE_OF = {key: role for role, key in HEARTBEAT_KEYS.items()}
_COMPARED_STEPS = _compared_steps()
