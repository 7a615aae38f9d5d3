"""Support for routing tests against the real simulator: flags, orders, and the checks.

The checks say what "nothing lost, nothing run twice" means on the records of both sides:
the ledger and the simulator's own per-order history.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from strangler.legacy_adapter import LegacyClient, LegacyOrder
from strangler.orders import OrderNotification
from tests.helpers import REPO_ROOT

FLAGS_FILE = REPO_ROOT / "flags" / "city_orders_instant_processing.json"
TERMINAL = {"fulfilled", "rejected_fraud", "payment_declined", "failed"}


def write_flags(path: Path, *, rollout: int, instant: int = 1000, shadow: int = 0) -> Path:
    """A copy of the flag file with this rollout % and variant weights (out of 1000)."""
    document = json.loads(FLAGS_FILE.read_text())
    strategy = document["features"][0]["strategies"][0]
    strategy["parameters"]["rollout"] = str(rollout)
    for variant in strategy["variants"]:
        variant["weight"] = {"instant": instant, "shadow": shadow}[variant["name"]]
    path.write_text(json.dumps(document, indent=2))
    return path


def mixed_orders(count: int, prefix: str) -> list[OrderNotification]:
    """Orders whose business outcome is known in advance: mostly fulfilled, some not."""
    orders = []
    for n in range(count):
        fields: dict[str, Any] = {"amount_cents": 2500, "quantity": 1, "payment_token": "tok_ok"}
        if n % 7 == 3:
            fields["amount_cents"] = 250_000  # over the fraud limit
        elif n % 7 == 5:
            fields["payment_token"] = "decline_card"
        orders.append(
            OrderNotification.from_dict(
                {"order_id": f"{prefix}-{n}", "user_guid": f"u-{prefix}-{n}", "unit_id": "unit-1"}
                | fields
            )
        )
    return orders


def expected_outcome(order: OrderNotification) -> str:
    """The outcome the simulator's rules give this order."""
    if (order.amount_cents or 0) > 100_000:
        return "rejected_fraud"
    if (order.payment_token or "").startswith("decline_"):
        return "payment_declined"
    return "fulfilled"


def create_in_legacy(legacy_url: str, orders: Iterable[OrderNotification]) -> None:
    """Create the orders in the legacy app, as the order service does before notifying."""
    with LegacyClient(legacy_url) as client:
        for order in orders:
            client.create_order(order)


def legacy_orders(legacy_url: str, order_ids: Sequence[str]) -> dict[str, LegacyOrder]:
    """The simulator's record of each order."""
    with LegacyClient(legacy_url) as client:
        return {order_id: client.get_order(order_id) for order_id in order_ids}


def ledger_rows(ledger_url: str) -> dict[str, Mapping[str, Any]]:
    """Every orders row of a ledger database, by order_id."""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM orders")).mappings().all()
    finally:
        engine.dispose()
    return {row["order_id"]: dict(row) for row in rows}


# Every (order, status) an order reached, for the terminal ones: the transitions rows and
# the status an ended orders row holds.
ENDINGS = (
    "SELECT order_id, status FROM transitions"
    " UNION SELECT order_id, status FROM orders WHERE terminal_at IS NOT NULL"
)


def terminal_transitions(ledger_url: str) -> Counter[str]:
    """How many terminal transitions each order has in the ledger: the table's rows and
    the terminal status an orders row holds (the instant path's finish writes no row for
    it; strangler.ledger.moves), each (order, status) once."""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(ENDINGS)).all()
    finally:
        engine.dispose()
    return Counter(order_id for order_id, status in rows if status in TERMINAL)


def run_twice_problems(
    rows: Mapping[str, Mapping[str, Any]], legacy: Mapping[str, LegacyOrder]
) -> dict[str, str]:
    """Orders both paths processed, or with a step the legacy app applied twice.

    An order handed back to the batch jobs (``handoff`` fallback) may legitimately carry
    per-order API steps before its batch steps; no other order may have both actors.
    """
    problems: dict[str, str] = {}
    for order_id, order in legacy.items():
        actors = {record.actor for record in order.history}
        applied = Counter(
            (record.step, record.actor) for record in order.history if record.decision
        )
        twice = sorted(key for key, count in applied.items() if count > 1)
        if twice:
            problems[order_id] = f"steps applied twice: {twice}"
        elif actors == {"batch", "api"} and rows[order_id]["handoff"] != "fallback":
            problems[order_id] = f"both batch and api steps: {order.history}"
    return problems
