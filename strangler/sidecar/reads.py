"""Read endpoints: what the flag says now, and the ledger's story of one order."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from strangler.exceptions import InvalidNotification
from strangler.orders import OrderNotification
from strangler.sidecar.errors import json_error
from strangler.sidecar.state import sidecar_state

__all__ = ["blueprint"]

blueprint = Blueprint("reads", __name__)
_DECIDE_FIELDS = ("order_id", "user_guid", "unit_id", "city")


@blueprint.get("/_strangler/decide")
def decide() -> Response:
    """The decision the flag gives now for ``order_id``, ``user_guid``, ``unit_id`` [, city]."""
    fields = {name: request.args[name] for name in _DECIDE_FIELDS if name in request.args}
    try:
        order = OrderNotification.from_dict(fields)
    except InvalidNotification as exc:
        return json_error(400, "invalid_query", str(exc), fields=exc.errors)
    g.order_id = order.order_id
    decision = sidecar_state().runtime.flags.decide(order)
    return jsonify({"order_id": order.order_id, **decision.to_dict()})


@blueprint.get("/_strangler/orders/<order_id>")
def order_story(order_id: str) -> Response:
    """The story of one order: decision, status, steps and transition timestamps."""
    g.order_id = order_id
    story = sidecar_state().runtime.ledger.story(order_id)
    if story is None:
        return json_error(404, "not_found", f"no order {order_id!r} in the ledger")
    return jsonify(story)
