"""``POST /_strangler/notifications``: an order notification sent straight to the sidecar.

202 when the order is new, 200 for a duplicate (nothing changes), 400 naming every bad
field (the raw body is kept in the rejected table), 413 over 64 KiB. Needs the admin
bearer token. Under the sidecar's dispatcher, POST is answered by the lean WSGI
:class:`strangler.sidecar.intake_wsgi.NotificationEndpoint`; the Flask route below keeps
the path in the app's URL map (405 for other methods) and answers the same when the
Flask app is mounted on its own. :func:`accept_notification` is the answer both give, and the
SNS endpoint too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, g, jsonify

from strangler.exceptions import InvalidNotification
from strangler.orders import OrderNotification
from strangler.sidecar.auth import require_admin
from strangler.sidecar.bodies import read_body
from strangler.sidecar.state import SidecarState, sidecar_state

__all__ = [
    "MAX_NOTIFICATION_BYTES",
    "NOTIFICATIONS_PATH",
    "SOURCE",
    "IntakeAnswer",
    "accept_notification",
    "blueprint",
    "parse_or_reject",
    "take_in",
]

MAX_NOTIFICATION_BYTES = 64 * 1024
NOTIFICATIONS_PATH = "/_strangler/notifications"
SOURCE = "notifications"
blueprint = Blueprint("intake", __name__)


@dataclass(frozen=True, slots=True)
class IntakeAnswer:
    """The HTTP answer to one notification: status and JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


@blueprint.post(NOTIFICATIONS_PATH)
@require_admin
def notifications() -> Response:
    """Take one order notification in."""
    return take_in(sidecar_state(), read_body(MAX_NOTIFICATION_BYTES), source=SOURCE)


def take_in(state: SidecarState, raw: bytes | str, *, source: str) -> Response:
    """Validate and take in one notification, as a Flask response (sets ``g.order_id``)."""
    parsed = parse_or_reject(state, raw, source=source)
    if isinstance(parsed, OrderNotification):
        g.order_id = parsed.order_id
        answer = accept_notification(state, parsed, source=source)
    else:
        answer = parsed
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


def parse_or_reject(
    state: SidecarState, raw: bytes | str, *, source: str
) -> OrderNotification | IntakeAnswer:
    """The notification, or a 400 naming the bad fields (the bad body is recorded as rejected)."""
    try:
        return OrderNotification.from_json(raw)
    except InvalidNotification as exc:
        state.runtime.ledger.record_rejected(raw, reason=str(exc), source=source)
        state.metrics.count_intake(source, "invalid")
        return IntakeAnswer(
            400, {"error": "invalid_notification", "message": str(exc), "fields": exc.errors}
        )


def accept_notification(
    state: SidecarState, order: OrderNotification, *, source: str
) -> IntakeAnswer:
    """Write the order to the ledger (durable on return): 202 new, 200 duplicate.

    Raises LedgerError when the ledger cannot be written.
    """
    result = state.runtime.router.intake(order, source=source)
    state.metrics.count_intake(source, "new" if result.new else "duplicate")
    body = {"order_id": result.order_id, "duplicate": not result.new}
    return IntakeAnswer(202 if result.new else 200, body)
