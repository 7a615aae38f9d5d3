"""Parsing and checking request input; every problem is an InvalidInput naming the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strangler.exceptions import InvalidNotification
from strangler.orders import OrderNotification
from strangler.sim.engine import NewOrder
from strangler.sim.exceptions import InvalidInput
from strangler.sim.model import MODES, STATUSES, format_ts, parse_ts

__all__ = ["ListQuery", "dry_run", "json_body", "list_query", "new_order", "release_reason"]

MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
MAX_QUANTITY = 100
MAX_REASON = 500
MAX_KEY = 255
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The filters of ``GET /orders``; ``updated_since`` in canonical text."""

    status: str | None
    processing_mode: str | None
    updated_since: str | None
    limit: int


def json_body(raw: bytes, *, required: bool) -> dict[str, Any]:
    """The request body as a JSON object (empty when there is none and none is required)."""
    if not raw.strip():
        if required:
            raise InvalidInput({"body": "is required: send a JSON object"})
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput({"body": f"is not valid JSON ({exc})"}) from exc
    if not isinstance(data, dict):
        raise InvalidInput({"body": f"must be a JSON object, got {type(data).__name__}"})
    return data


def dry_run(body: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """``dry_run`` from the body (a boolean) or the query string (true/false)."""
    if "dry_run" in body:
        value = body["dry_run"]
        if not isinstance(value, bool):
            raise InvalidInput({"dry_run": f"must be true or false, got {value!r}"})
        if query.get("dry_run") is not None and _flag(query["dry_run"]) != value:
            raise InvalidInput({"dry_run": "the body and the query string disagree"})
        return value
    text = query.get("dry_run")
    return False if text is None else _flag(text)


def idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header, checked."""
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_KEY:
        raise InvalidInput({"Idempotency-Key": f"must be 1 to {MAX_KEY} characters"})
    return value


def new_order(body: Mapping[str, Any]) -> NewOrder:
    """The fields of ``POST /orders``, validated like an order notification."""
    assigned = body.get("order_id") is None
    probe = {**body, "order_id": "assigned"} if assigned else dict(body)
    try:
        note = OrderNotification.from_dict(probe)
    except InvalidNotification as exc:
        raise InvalidInput(exc.errors) from exc
    if note.quantity is not None and not 1 <= note.quantity <= MAX_QUANTITY:
        raise InvalidInput(
            {"quantity": f"must be between 1 and {MAX_QUANTITY}, got {note.quantity}"}
        )
    return NewOrder(
        order_id=None if assigned else note.order_id,
        user_guid=note.user_guid,
        unit_id=note.unit_id,
        city=note.city,
        amount_cents=note.amount_cents,
        currency=note.currency,
        quantity=note.quantity,
        payment_token=note.payment_token,
    )


def list_query(query: Mapping[str, str]) -> ListQuery:
    """The filters of ``GET /orders``."""
    errors: dict[str, str] = {}
    status = query.get("status")
    if status is not None and status not in STATUSES:
        errors["status"] = f"must be one of {', '.join(STATUSES)}, got {status!r}"
    mode = query.get("processing_mode")
    if mode is not None and mode not in MODES:
        errors["processing_mode"] = f"must be one of {', '.join(MODES)}, got {mode!r}"
    since = query.get("updated_since")
    since_text = None
    if since is not None:
        try:
            since_text = format_ts(parse_ts(since.replace(" ", "+")))
        except ValueError:
            errors["updated_since"] = (
                f"must be an ISO-8601 timestamp with a UTC offset "
                f"(e.g. 2025-01-31T12:00:00.000000Z), got {since!r}"
            )
    limit = _limit(query.get("limit"), errors)
    if errors:
        raise InvalidInput(errors)
    return ListQuery(status, mode, since_text, limit)


def release_reason(body: Mapping[str, Any]) -> str:
    """The ``reason`` of a release (empty when absent)."""
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidInput({"reason": f"must be a string, got {type(reason).__name__}"})
    if len(reason) > MAX_REASON:
        raise InvalidInput({"reason": f"must be at most {MAX_REASON} characters"})
    return reason


def _limit(text: str | None, errors: dict[str, str]) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"must be an integer between 1 and {MAX_LIMIT}, got {text!r}"
    return limit


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput({"dry_run": f"must be true or false, got {text!r}"})
