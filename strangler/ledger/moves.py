"""An order's transitions: the rows of ``transitions`` and the moves its orders row holds.

Since schema v5 the instant path's pin and finish write no transitions row for a move its
orders row records by itself, with everything the row would say: ``routed`` at
``routed_at`` with ``decision_reason`` as its reason, ``running`` at ``running_at`` and
the terminal status at ``terminal_at``, neither with a reason (three rows an order fewer:
docs/ledger.md). Every other move (a hand-off, a legacy end, a move with a reason of its
own) still writes its row. Readers take an order's transitions from :func:`complete`:
the table's rows, and the row's moves the table has no row for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from strangler.orders import TERMINAL_STATUSES, OrderStatus

__all__ = ["complete"]

# A status's place in an order's life: a pair of moves at one time is in this order.
_RANK = {
    OrderStatus.ROUTED.value: 1,
    OrderStatus.RUNNING.value: 2,
    OrderStatus.FELL_BACK.value: 3,
    **dict.fromkeys((status.value for status in TERMINAL_STATUSES), 4),
}
_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


def complete(order: Mapping[Any, Any], rows: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """The order's transitions as rows of ``transitions`` (``id`` None for a row's move),
    in the order they happened: by time, then by their place in an order's life."""
    moves = [dict(row) for row in rows]
    recorded = {move["status"] for move in moves}
    for status, at, reason in _held(order):
        if at is not None and status not in recorded:
            order_id = order["order_id"]
            moves.append(
                {"id": None, "order_id": order_id, "status": status, "at": at, "reason": reason}
            )
    return sorted(moves, key=_when)


def _held(order: Mapping[Any, Any]) -> list[tuple[str, Any, str | None]]:
    held = [
        (OrderStatus.ROUTED.value, order["routed_at"], order["decision_reason"]),
        (OrderStatus.RUNNING.value, order["running_at"], None),
    ]
    if order["status"] in _TERMINAL:
        held.append((order["status"], order["terminal_at"], None))
    return held


def _when(move: Mapping[str, Any]) -> tuple[Any, int, int]:
    return move["at"], _RANK.get(move["status"], 0), move["id"] or 0
