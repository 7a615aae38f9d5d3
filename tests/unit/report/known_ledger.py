"""A small ledger with answers known by hand, written straight into the ledger's tables.

Window: orders routed in [T0, T0 + 1 h). Contents and the figures they must give:

- legacy: 10 orders, times 10, 20, ..., 100 s -> p50 50, p90 90, p99 100, max 100;
  8 fulfilled, 1 rejected_fraud, 1 payment_declined.
- instant: 21 orders, 20 terminal with times 1, 2, ..., 20 ms -> p50 10 ms, p90 18 ms,
  p99 20 ms; 1 in flight; 19 fulfilled, 1 failed (with an authorize_payment step error);
  1 fallback ("payment timeout"), 1 legacy_owned ("claim answered 409").
- shadow: 12 orders; 10 compared, 2 of them with a fraud_scan mismatch; 2 not compared
  (dry_run_failed, legacy_not_terminal).
- noise: 4 legacy orders compared with legacy's own dry run, 1 fraud_scan mismatch.
- reconciled: 2 orders (source 'reconciled', path legacy), fulfilled in 300 s.
- outside the window: 1 legacy order routed an hour before T0.
- rollout_events: 0 -> 10 before the window, 10 -> 25 inside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from strangler.ledger import schema
from strangler.ledger.migrate import ensure_schema

__all__ = ["STEPS", "T0", "UNTIL", "build_known_ledger"]

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(hours=1)
STEPS = ("fraud_scan", "authorize_payment", "fulfill", "outcome")


def _order(order_id: str, path: str, at: datetime, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": order_id,
        "notification": {"order_id": order_id, "user_guid": "u", "unit_id": "x"},
        "source": "notifications",
        "status": "routed",
        "path": path,
        "variant": path,
        "rollout": 25,
        "flag_revision": "r1",
        "decision_reason": "rollout",
        "received_at": at,
        "routed_at": at,
        "running_at": None,
        "fell_back_at": None,
        "terminal_at": None,
        "updated_at": at,
        "outcome": None,
        "handoff": None,
        "dry_run_outcome": None,
        "needs_dispatch": False,
        "next_attempt_at": at,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": 0,
        "last_error": None,
        "legacy_status": None,
        "legacy_terminal_at": None,
        "follow_checked_at": None,
    }
    row.update(fields)
    return row


def _done(order_id: str, path: str, at: datetime, seconds: float, outcome: str, **more: Any):  # type: ignore[no-untyped-def]
    return _order(
        order_id,
        path,
        at,
        status=outcome,
        outcome=outcome,
        terminal_at=at + timedelta(seconds=seconds),
        **more,
    )


def _orders() -> list[dict[str, Any]]:
    rows = []
    legacy_outcomes = ["fulfilled"] * 8 + ["rejected_fraud", "payment_declined"]
    for i, outcome in enumerate(legacy_outcomes):
        rows.append(_done(f"L{i}", "legacy", T0 + timedelta(minutes=i), 10.0 * (i + 1), outcome))
    for i in range(20):
        outcome = "failed" if i == 0 else "fulfilled"
        extra: dict[str, Any] = {}
        if i == 1:
            extra = {"handoff": "fallback", "fell_back_at": T0 + timedelta(minutes=i)}
        if i == 2:
            extra = {"handoff": "legacy_owned", "last_error": "claim answered 409"}
        at = T0 + timedelta(minutes=i, seconds=30)
        rows.append(_done(f"I{i}", "instant", at, 0.001 * (i + 1), outcome, **extra))
    rows.append(_order("I-open", "instant", T0 + timedelta(minutes=50)))
    for i in range(12):
        rows.append(
            _done(f"S{i}", "shadow", T0 + timedelta(minutes=i, seconds=45), 60, "fulfilled")
        )
    for i in range(2):
        rows.append(
            _done(
                f"R{i}", "legacy", T0 + timedelta(minutes=5), 300, "fulfilled", source="reconciled"
            )
        )
    rows.append(_done("OLD", "legacy", T0 - timedelta(hours=1), 5, "fulfilled"))
    return rows


def _comparisons() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for i in range(12):
        at = T0 + timedelta(minutes=i, seconds=45)
        compared = i < 10
        mismatch = i in {3, 7}
        rows.append(
            {
                "order_id": f"S{i}",
                "kind": "shadow",
                "status": "compared" if compared else "not_compared",
                "reason": None if compared else ("dry_run_failed", "legacy_not_terminal")[i - 10],
                "mismatch": mismatch if compared else None,
                "candidate": {"fraud_scan": "rejected" if mismatch else "approved"},
                "baseline": {"fraud_scan": "approved"},
                "routed_at": at,
                "compared_at": at + timedelta(minutes=2),
            }
        )
        if compared:
            steps.extend(_steps(f"S{i}", "shadow", at, bad=mismatch))
    for i in range(4):
        at = T0 + timedelta(minutes=i)
        rows.append(
            {
                "order_id": f"L{i}",
                "kind": "noise",
                "status": "compared",
                "reason": None,
                "mismatch": i == 0,
                "candidate": {},
                "baseline": {},
                "routed_at": at,
                "compared_at": at,
            }
        )
        steps.extend(_steps(f"L{i}", "noise", at, bad=i == 0))
    return rows, steps


def _steps(order_id: str, kind: str, at: datetime, *, bad: bool) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order_id,
            "kind": kind,
            "step": step,
            "verdict": "mismatch" if bad and step == "fraud_scan" else "match",
            "detail": "decision: 'rejected' != 'approved'"
            if bad and step == "fraud_scan"
            else None,
            "routed_at": at,
        }
        for step in STEPS
    ]


def _rollout_events() -> list[dict[str, Any]]:
    return [
        {
            "at": T0 - timedelta(days=1),
            "actor": "ops",
            "from_rollout": 0,
            "to_rollout": 10,
            "reason": "start",
            "flag_revision": "r0",
        },
        {
            "at": T0 + timedelta(minutes=30),
            "actor": "gate",
            "from_rollout": 10,
            "to_rollout": 25,
            "reason": "advance",
            "flag_revision": "r1",
        },
    ]


def build_known_ledger(engine: sa.Engine) -> None:
    """Create the ledger's tables on ``engine`` and write the rows the docstring lists."""
    ensure_schema(engine)
    comparisons, comparison_steps = _comparisons()
    step_error = {
        "order_id": "I0",
        "path": "instant",
        "step": "authorize_payment",
        "dry_run": False,
        "seq": 0,
        "decision": None,
        "payload": {},
        "started_at": T0,
        "finished_at": T0,
        "error": "gateway 503",
        "recorded_at": T0,
    }
    moved = {
        "order_id": "I1",
        "status": "fell_back",
        "at": T0 + timedelta(minutes=1),
        "reason": "payment timeout",
    }
    with engine.begin() as conn:
        conn.execute(schema.orders.insert(), _orders())
        conn.execute(schema.step_results.insert(), [step_error])
        conn.execute(schema.transitions.insert(), [moved])
        conn.execute(schema.comparisons.insert(), comparisons)
        conn.execute(schema.comparison_steps.insert(), comparison_steps)
        conn.execute(schema.rollout_events.insert(), _rollout_events())
