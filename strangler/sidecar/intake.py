"""``POST /_strangler/notifications``: an order notification sent straight to the sidecar.

202 when the order is new, 200 for a duplicate (nothing changes), 400 naming every bad
field (the raw body is kept in the rejected table), 413 over 64 KiB. Needs the admin
bearer token.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from strangler.exceptions import InvalidNotification
from strangler.orders import OrderNotification
from strangler.sidecar.auth import require_admin
from strangler.sidecar.bodies import read_body
from strangler.sidecar.errors import json_error
from strangler.sidecar.state import SidecarState, sidecar_state

__all__ = ["MAX_NOTIFICATION_BYTES", "blueprint", "take_in"]

MAX_NOTIFICATION_BYTES = 64 * 1024
SOURCE = "notifications"
blueprint = Blueprint("intake", __name__)


@blueprint.post("/_strangler/notifications")
@require_admin
def notifications() -> Response:
    """Take one order notification in."""
    return take_in(sidecar_state(), read_body(MAX_NOTIFICATION_BYTES), source=SOURCE)


def take_in(state: SidecarState, raw: bytes | str, *, source: str) -> Response:
    """Validate and take in one notification; the answer every intake endpoint gives."""
    try:
        order = OrderNotification.from_json(raw)
    except InvalidNotification as exc:
        state.runtime.ledger.record_rejected(raw, reason=str(exc), source=source)
        state.metrics.count_intake(source, "invalid")
        return json_error(400, "invalid_notification", str(exc), fields=exc.errors)
    g.order_id = order.order_id
    result = state.runtime.router.intake(order, source=source)
    state.metrics.count_intake(source, "new" if result.new else "duplicate")
    response = jsonify({"order_id": result.order_id, "duplicate": not result.new})
    response.status_code = 202 if result.new else 200
    return response
