"""Decode the legacy app's JSON answers into the typed records of ``models``.

Pure functions; anything that breaks docs/legacy-api.yaml raises LegacyProtocolError
naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar

from strangler.legacy_adapter.exceptions import LegacyProtocolError
from strangler.legacy_adapter.models import (
    JobInfo,
    JobRun,
    LegacyOrder,
    LegacyStepRecord,
    ListedOrder,
    StepOutcome,
)

__all__ = [
    "claim_decision",
    "job_info",
    "job_run",
    "listed_orders",
    "order",
    "order_list",
    "step_outcome",
]

T = TypeVar("T")


def order(data: Any) -> LegacyOrder:
    """An Order object."""
    obj = _object(data, "order")
    return LegacyOrder(
        order_id=_get(obj, "order_id", str),
        status=_get(obj, "status", str),
        processing_mode=_get(obj, "processing_mode", str),
        user_guid=_get(obj, "user_guid", str),
        unit_id=_get(obj, "unit_id", str),
        created_at=_timestamp(obj, "created_at"),
        updated_at=_timestamp(obj, "updated_at"),
        amount_cents=_optional(obj, "amount_cents", int),
        quantity=_optional(obj, "quantity", int),
        fraud_checked_at=_optional_timestamp(obj, "fraud_checked_at"),
        authorized_at=_optional_timestamp(obj, "authorized_at"),
        fulfilled_at=_optional_timestamp(obj, "fulfilled_at"),
        terminal_at=_optional_timestamp(obj, "terminal_at"),
        vouchers=tuple(_strings(obj, "vouchers")),
        last_error=_optional(obj, "last_error", str),
        history=tuple(_step_record(item) for item in _list(obj, "history")),
        city=_optional(obj, "city", str),
        currency=_optional(obj, "currency", str),
        attempts=_optional(obj, "attempts", int) or 0,
        claimed_at=_optional_timestamp(obj, "claimed_at"),
        released_at=_optional_timestamp(obj, "released_at"),
        release_reason=_optional(obj, "release_reason", str),
    )


def order_list(data: Any) -> list[LegacyOrder]:
    """An OrderList object's orders."""
    return [order(item) for item in _list(_object(data, "order list"), "orders")]


def listed_orders(data: Any) -> list[ListedOrder]:
    """An OrderList object's orders, each checked for its id and update time only; the
    rest is checked when its reader asks for the whole order (``ListedOrder.order``)."""
    return [_listed(item) for item in _list(_object(data, "order list"), "orders")]


def _listed(data: Any) -> ListedOrder:
    obj = _object(data, "order")
    return ListedOrder(
        order_id=_get(obj, "order_id", str),
        updated_at=_timestamp(obj, "updated_at"),
        load=partial(order, obj),
    )


def step_outcome(data: Any) -> StepOutcome:
    """A StepResult object."""
    obj = _object(data, "step result")
    details = _optional(obj, "details", dict) or {}
    return StepOutcome(
        step=_get(obj, "step", str),
        decision=_get(obj, "decision", str),
        order_status=_get(obj, "order_status", str),
        dry_run=_get(obj, "dry_run", bool),
        details=MappingProxyType(dict(details)),
        order_id=_optional(obj, "order_id", str),
        replayed=_optional(obj, "replayed", bool) or False,
    )


def claim_decision(data: Any) -> str:
    """A ClaimResult object's decision: ``claimed`` or ``conflict``."""
    decision = _get(_object(data, "claim result"), "decision", str)
    if decision not in ("claimed", "conflict"):
        raise LegacyProtocolError(f"claim result: unknown decision {decision!r}")
    return decision


def job_run(data: Any) -> JobRun:
    """A JobRun object."""
    obj = _object(data, "job run")
    outcomes = _get(obj, "outcomes", dict)
    return JobRun(
        run_id=_get(obj, "run_id", int),
        job=_get(obj, "job", str),
        trigger=_get(obj, "trigger", str),
        started_at=_timestamp(obj, "started_at"),
        finished_at=_timestamp(obj, "finished_at"),
        selected=_get(obj, "selected", int),
        processed=_get(obj, "processed", int),
        skipped=_get(obj, "skipped", int),
        errors=_get(obj, "errors", int),
        failed=_get(obj, "failed", int),
        outcomes=MappingProxyType({str(k): _count(k, v) for k, v in outcomes.items()}),
    )


def job_info(data: Any) -> JobInfo:
    """A JobInfo object."""
    obj = _object(data, "job")
    last = obj.get("last_run")
    return JobInfo(
        name=_get(obj, "name", str),
        step=_get(obj, "step", str),
        from_status=_get(obj, "from_status", str),
        interval_s=float(_get(obj, "interval_s", (int, float))),
        batch_size=_get(obj, "batch_size", int),
        scheduled=_get(obj, "scheduled", bool),
        next_run_at=_optional_timestamp(obj, "next_run_at"),
        running=_get(obj, "running", bool),
        last_run=None if last is None else job_run(last),
        recent_runs=tuple(job_run(item) for item in _list(obj, "recent_runs")),
    )


def _step_record(data: Any) -> LegacyStepRecord:
    obj = _object(data, "history record")
    return LegacyStepRecord(
        step=_get(obj, "step", str),
        actor=_get(obj, "actor", str),
        decision=_optional(obj, "decision", str),
        at=_timestamp(obj, "at"),
        error=_optional(obj, "error", str),
        reason=_optional(obj, "reason", str),
    )


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise LegacyProtocolError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _get(obj: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...]) -> T:
    if key not in obj:
        raise LegacyProtocolError(f"legacy answer lacks the field {key!r}")
    value = obj[key]
    if not _is(value, kind):
        raise LegacyProtocolError(
            f"legacy answer field {key!r} has the wrong type: {type(value).__name__}"
        )
    return value  # type: ignore[no-any-return]


def _optional(obj: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    if obj.get(key) is None:
        return None
    return _get(obj, key, kind)


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False
    return isinstance(value, kind)


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    return _optional(obj, key, list) or []


def _strings(obj: Mapping[str, Any], key: str) -> list[str]:
    items = _list(obj, key)
    if not all(isinstance(item, str) for item in items):
        raise LegacyProtocolError(f"legacy answer field {key!r} must be a list of strings")
    return items


def _count(key: Any, value: Any) -> int:
    if not _is(value, int):
        raise LegacyProtocolError(f"legacy answer: outcome count {key!r} must be an integer")
    return int(value)


def _timestamp(obj: Mapping[str, Any], key: str) -> datetime:
    text = _get(obj, key, str)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LegacyProtocolError(
            f"legacy answer field {key!r} is not an ISO-8601 timestamp: {text!r}"
        ) from exc
    if value.tzinfo is None:
        raise LegacyProtocolError(f"legacy answer field {key!r} has no UTC offset: {text!r}")
    return value


def _optional_timestamp(obj: Mapping[str, Any], key: str) -> datetime | None:
    return None if obj.get(key) is None else _timestamp(obj, key)
