"""Keep payment data out of the ledger: the notifications and rejected bodies it stores."""

from __future__ import annotations

import json
import re
from typing import Any

from strangler.logs import PAYMENT_FIELDS
from strangler.orders import OrderNotification

__all__ = ["MASK", "MAX_REJECTED_BODY", "mask_body", "stored_notification"]

MASK = "[redacted]"
MAX_REJECTED_BODY = 64 * 1024
_FIELD_IN_TEXT = re.compile(
    rb"""(?P<key>["']?(?:%s)["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,&;}\]]+)"""
    % b"|".join(re.escape(name.encode()) for name in sorted(PAYMENT_FIELDS)),
    re.IGNORECASE,
)


def stored_notification(order: OrderNotification) -> dict[str, Any]:
    """The notification as the ledger stores it: payment fields dropped, however deep.

    The instant pipeline reads payment data from the legacy app, so nothing downstream
    needs the token from us.
    """
    return _without_payment(order.to_dict())


def mask_body(raw: bytes) -> bytes:
    """A rejected body with payment values masked, cut at :data:`MAX_REJECTED_BODY` bytes.

    A JSON body is masked field by field (and re-serialised only when something was
    masked); any other body has ``payment_token=...``-like pairs masked in the text.
    """
    try:
        data = json.loads(raw)
        cleaned = _masked(data)
        masked = raw if cleaned == data else json.dumps(cleaned).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep is masked as text
        masked = _FIELD_IN_TEXT.sub(rb"\g<key>" + MASK.encode(), raw)
    return masked[:MAX_REJECTED_BODY]


def _without_payment(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_payment(value) if isinstance(value, dict) else value
        for key, value in data.items()
        if key not in PAYMENT_FIELDS
    }


def _masked(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: MASK if key in PAYMENT_FIELDS else _masked(value) for key, value in data.items()
        }
    if isinstance(data, list):
        return [_masked(item) for item in data]
    return data
