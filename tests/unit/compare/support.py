"""Builders for the comparison tests: step records of each path, and order records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from strangler.compare.pairing import OrderRecord
from strangler.orders import Route, StepResult

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def step(
    name: str,
    decision: str | None,
    *,
    path: Route = Route.INSTANT,
    dry_run: bool = True,
    seq: int = 0,
    error: str | None = None,
    **payload: Any,
) -> StepResult:
    """One step record; ``payload`` as the ledger keeps it (details, reason, counts)."""
    at = T0 + timedelta(seconds=seq)
    return StepResult(
        order_id="o-1",
        path=path,
        step=name,
        decision=decision,
        started_at=at,
        finished_at=at,
        payload=payload,
        error=error,
        dry_run=dry_run,
    )


def dry_run_steps(
    fraud: str = "pass", vouchers: int = 1, reason: str | None = None
) -> list[StepResult]:
    """The instant dry run's records: claim, then the steps up to where it stopped."""
    details = {"reason": reason} if reason else {}
    steps = [step("claim", "claimed"), step("fraud_scan", fraud, details=details)]
    if fraud == "pass":
        steps.append(step("authorize_payment", "authorized", details={}))
        codes = [f"GC-{i}" for i in range(vouchers)]
        steps.append(step("fulfill", "fulfilled", details={"vouchers": codes}))
    return steps


def batch_steps(
    fraud: str = "pass", vouchers: int = 1, reason: str | None = None
) -> list[StepResult]:
    """The batch jobs' records, as the follower writes them."""
    legacy: dict[str, Any] = {"path": Route.LEGACY, "dry_run": False}
    extra = {"reason": reason} if reason else {}
    steps = [step("fraud_scan", fraud, actor="batch", **extra, **legacy)]
    if fraud == "pass":
        steps.append(step("authorize_payment", "authorized", actor="batch", **legacy))
        steps.append(step("fulfill", "fulfilled", actor="batch", voucher_count=vouchers, **legacy))
    return steps


def record(
    *,
    path: str = "shadow",
    steps: list[StepResult] | None = None,
    dry_run_outcome: str | None = None,
    settled: bool = False,
    legacy_status: str | None = None,
    handoff: str | None = None,
) -> OrderRecord:
    """An order as the ledger would describe it for comparing."""
    return OrderRecord(
        order_id="o-1",
        path=path,
        routed_at=T0,
        handoff=handoff,
        dry_run_settled=settled,
        dry_run_outcome=dry_run_outcome,
        legacy_status=legacy_status,
        steps=tuple(steps or ()),
    )
