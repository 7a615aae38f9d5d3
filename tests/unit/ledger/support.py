"""Test support for the ledger and router tests: a settable clock and order builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from strangler.orders import Decision, OrderNotification, Route, StepResult
from strangler.testing import ManualClock

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


Clock = ManualClock  # the public fake of strangler.testing


def make_order(order_id: str = "o-1", **fields: Any) -> OrderNotification:
    """A valid order notification, with ``fields`` overriding the defaults."""
    data = {"order_id": order_id, "user_guid": f"user-{order_id}", "unit_id": "unit-7"}
    data.update(fields)
    return OrderNotification.from_dict(data)


def make_decision(path: Route = Route.INSTANT, **fields: Any) -> Decision:
    """A routing decision for ``path``."""
    values: dict[str, Any] = {
        "variant": path.value if path is not Route.LEGACY else "disabled",
        "rollout": 50,
        "flag_revision": "rev-1",
        "reason": f"test decision: {path.value}",
    }
    values.update(fields)
    return Decision(path=path, **values)


def make_step(
    order_id: str = "o-1",
    step: str = "fraud_scan",
    *,
    path: Route = Route.INSTANT,
    decision: str | None = "pass",
    at: datetime = T0,
    dry_run: bool = False,
    error: str | None = None,
) -> StepResult:
    """A step result that took one second from ``at``."""
    return StepResult(
        order_id=order_id,
        path=path,
        step=step,
        decision=decision,
        started_at=at,
        finished_at=at + timedelta(seconds=1),
        payload={"note": "test"},
        error=error,
        dry_run=dry_run,
    )
