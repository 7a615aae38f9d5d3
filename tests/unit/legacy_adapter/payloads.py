"""Answers of the legacy app as docs/legacy-api.yaml shapes them, for adapter tests."""

from __future__ import annotations

from typing import Any

BASE = "http://legacy.test"
CREATED = "2025-01-31T12:00:00.000001Z"


def order_json(**changes: Any) -> dict[str, Any]:
    """An Order object (pending, batch mode) with some fields changed."""
    order: dict[str, Any] = {
        "order_id": "ord-1",
        "user_guid": "user-1",
        "unit_id": "unit-1",
        "city": "boston",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token_masked": "****4242",
        "status": "pending",
        "processing_mode": "batch",
        "created_at": CREATED,
        "updated_at": CREATED,
        "fraud_checked_at": None,
        "authorized_at": None,
        "fulfilled_at": None,
        "terminal_at": None,
        "claimed_at": None,
        "released_at": None,
        "release_reason": None,
        "attempts": 0,
        "last_error": None,
        "vouchers": [],
        "history": [],
    }
    order.update(changes)
    return order


def step_json(step: str, decision: str, status: str, **changes: Any) -> dict[str, Any]:
    """A StepResult object."""
    body: dict[str, Any] = {
        "order_id": "ord-1",
        "step": step,
        "decision": decision,
        "order_status": status,
        "dry_run": False,
        "replayed": False,
        "details": {},
    }
    body.update(changes)
    return body


def claim_json(decision: str = "claimed", **changes: Any) -> dict[str, Any]:
    """A ClaimResult object."""
    body: dict[str, Any] = {
        "order_id": "ord-1",
        "decision": decision,
        "reason": None if decision == "claimed" else "batch_owned",
        "dry_run": False,
        "replayed": False,
        "order": order_json(processing_mode="instant"),
    }
    body.update(changes)
    return body


def job_run_json(**changes: Any) -> dict[str, Any]:
    """A JobRun object."""
    run: dict[str, Any] = {
        "run_id": 7,
        "job": "fraud_scan",
        "trigger": "manual",
        "started_at": CREATED,
        "finished_at": CREATED,
        "selected": 3,
        "processed": 2,
        "skipped": 0,
        "errors": 1,
        "failed": 0,
        "outcomes": {"pass": 1, "reject": 1},
    }
    run.update(changes)
    return run


def error_json(code: str, message: str = "no") -> dict[str, Any]:
    """An Error object."""
    return {"error": code, "message": message}
