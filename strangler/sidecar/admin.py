"""``GET/PUT /_strangler/rollout``: the rollout controller the CLI uses, over HTTP.

PUT takes exactly one change, ``{"percentage": 25}``, ``{"enabled": false}`` (the kill
switch) or ``{"variants": {"instant": 70, "shadow": 30}}``, plus a ``reason`` for the
audit log and optionally an ``actor``, and answers the rollout after the change with
``changed`` (false when the flag was already so). Both methods need the admin bearer
token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.exceptions import FlagFileError, LedgerError, RolloutError, UnleashAdminError
from strangler.orders import VISIBLE, integral
from strangler.rollout import RolloutChange, check_audit_text
from strangler.sidecar.auth import require_admin
from strangler.sidecar.bodies import read_body
from strangler.sidecar.errors import json_error
from strangler.sidecar.seams import RolloutController, SidecarLedger
from strangler.sidecar.state import sidecar_state

__all__ = ["blueprint"]

_log = structlog.get_logger()
blueprint = Blueprint("admin", __name__)
_CHANGES = ("percentage", "enabled", "variants")
_ALLOWED_KEYS = frozenset({*_CHANGES, "reason", "actor"})
_MAX_BODY = 16 * 1024


class _BadChange(ValueError):
    """The PUT body does not describe one valid change."""


@blueprint.get("/_strangler/rollout")
@require_admin
def show_rollout() -> Response:
    """The flag's rollout now: enabled, percentage, variants, revision."""
    try:
        state = sidecar_state().rollout.show()
    except (UnleashAdminError, FlagFileError) as exc:
        return _unavailable(exc)
    return jsonify(state.to_dict())


@blueprint.put("/_strangler/rollout")
@require_admin
def change_rollout() -> Response:
    """Apply one audited rollout change and answer with the rollout after it."""
    state = sidecar_state()
    try:
        change = _apply(state.rollout, _body())
    except (_BadChange, RolloutError) as exc:
        return json_error(400, "invalid_rollout_change", str(exc))
    except (UnleashAdminError, FlagFileError) as exc:
        return _unavailable(exc)
    recorded = _record_in_ledger(state.runtime.ledger, change) if change.changed else True
    return jsonify(
        {**change.after.to_dict(), "changed": change.changed, "timeline_recorded": recorded}
    )


def _record_in_ledger(ledger: SidecarLedger, change: RolloutChange) -> bool:
    """Put the change on the ledger's rollout timeline (reports read it from there).

    The change itself is already made and in the audit log (the flag store is the
    truth; the timeline is its copy), so a ledger failure is logged as an error and the
    answer says ``timeline_recorded: false`` rather than that the change failed.
    """
    try:
        ledger.record_rollout_event(change)
    except LedgerError as exc:
        _log.error("rollout_event_not_in_ledger", error=str(exc), revision=change.flag_revision)
        return False
    return True


def _unavailable(exc: UnleashAdminError | FlagFileError) -> Response:
    """The flag store (the Unleash server or the flag file) failed; nothing changed here."""
    return json_error(502, "flag_store_unavailable", str(exc))


def _body() -> Mapping[str, Any]:
    try:
        body = json.loads(read_body(_MAX_BODY))
    except ValueError:
        body = None
    except RecursionError:
        raise _BadChange("the body is nested too deeply to be a rollout change") from None
    if not isinstance(body, dict):
        raise _BadChange(
            'the body must be a JSON object such as {"percentage": 25, "reason": "..."}'
        )
    unknown = sorted(set(body) - _ALLOWED_KEYS)
    if unknown:
        raise _BadChange(f"unknown field(s) {', '.join(unknown)}; use {', '.join(_CHANGES)}")
    return body


def _apply(controller: RolloutController, body: Mapping[str, Any]) -> RolloutChange:
    changes = [name for name in _CHANGES if name in body]
    if len(changes) != 1:
        raise _BadChange(f"give exactly one of {', '.join(_CHANGES)}, got {changes or 'none'}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not VISIBLE.search(reason):
        raise _BadChange('"reason" is required: say why, for the audit log')
    actor = body.get("actor", f"admin-api ({request.remote_addr})")
    if not isinstance(actor, str) or not VISIBLE.search(actor):
        raise _BadChange('"actor" must be a non-empty string, or left out')
    check_audit_text("reason", reason)
    check_audit_text("actor", actor)
    value = body[changes[0]]
    if changes[0] == "percentage":
        percentage = integral(value)
        if percentage is None:
            raise _BadChange(f'"percentage" must be a whole number 0-100, got {value!r}')
        return controller.set_percentage(percentage, actor=actor, reason=reason)
    if changes[0] == "enabled":
        if not isinstance(value, bool):
            raise _BadChange(f'"enabled" must be true or false, got {value!r}')
        switch = controller.enable if value else controller.kill
        return switch(actor=actor, reason=reason)
    weights = {name: integral(w) for name, w in value.items()} if isinstance(value, dict) else {}
    if not weights or any(w is None for w in weights.values()):
        raise _BadChange(
            '"variants" must map variant names to whole weights adding up to 100, '
            f'such as {{"instant": 70, "shadow": 30}}; got {value!r}'
        )
    return controller.set_variants(
        {name: w for name, w in weights.items() if w is not None}, actor=actor, reason=reason
    )
