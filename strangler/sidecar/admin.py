"""``GET/PUT /_strangler/rollout``: the rollout controller the CLI uses, over HTTP.

PUT takes exactly one change, ``{"percentage": 25}``, ``{"enabled": false}`` (the kill
switch), ``{"variants": {"instant": 70, "shadow": 30}}`` or a migration stage
(``{"stage": "shadow"}``, ``{"stage": {"name": "live", "percent": 5, "shadow_share": 10}}``),
plus a ``reason`` for the audit log and optionally an ``actor``, and answers the rollout
after the change with ``changed`` (false when the flag was already so) and
``timeline_recorded`` with ``timeline_error``: the controller puts the change on the
ledger's timeline, and a write that fails there is reported beside a 200, not as an
error, since the change is made. A change that puts orders on instant where none were
needs a passing comparison verdict in the current step's window, else 409
``evidence_required`` saying what is missing; ``"no_evidence": true`` goes live anyway
(recorded). Kill and enable are never gated. Both methods need the admin bearer token;
GET also says where the gate's current step began (``step_since``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.exceptions import (
    EvidenceRequired,
    FlagFileError,
    LedgerError,
    RolloutError,
    UnleashAdminError,
)
from strangler.orders import VISIBLE, integral
from strangler.rollout.controller import RolloutChange, RolloutState, check_audit_text
from strangler.rollout.gate import window_start
from strangler.rollout.stage import Stage
from strangler.sidecar.auth import require_admin
from strangler.sidecar.bodies import read_body
from strangler.sidecar.errors import json_error
from strangler.sidecar.seams import RolloutController, SidecarLedger
from strangler.sidecar.state import sidecar_state

__all__ = ["blueprint"]

_log = structlog.get_logger()
blueprint = Blueprint("admin", __name__)
_CHANGES = ("percentage", "enabled", "variants", "stage")
_ALLOWED_KEYS = frozenset({*_CHANGES, "reason", "actor", "no_evidence"})
_STAGE_KEYS = frozenset({"name", "percent", "shadow_share"})
_MAX_BODY = 16 * 1024


class _BadChange(ValueError):
    """The PUT body does not describe one valid change."""


@blueprint.get("/_strangler/rollout")
@require_admin
def show_rollout() -> Response:
    """The flag's rollout now: enabled, percentage, variants, revision."""
    sidecar = sidecar_state()
    try:
        state = sidecar.rollout.show()
    except (UnleashAdminError, FlagFileError) as exc:
        return _unavailable(exc)
    return jsonify({**state.to_dict(), "step_since": _step_since(sidecar.runtime.ledger, state)})


def _step_since(ledger: SidecarLedger, state: RolloutState) -> str | None:
    """Where the gate's current step began (ISO), or None: no change recorded, or unread."""
    try:
        since = window_start(ledger, state)
    except LedgerError as exc:
        _log.warning("rollout_step_unread", error=str(exc))
        return None
    return since.isoformat() if since is not None else None


@blueprint.put("/_strangler/rollout")
@require_admin
def change_rollout() -> Response:
    """Apply one audited rollout change and answer with the rollout after it."""
    state = sidecar_state()
    try:
        change = _apply(state.rollout, _body(), state.settings.live_shadow_share)
    except EvidenceRequired as exc:
        return json_error(
            409,
            "evidence_required",
            f"going live needs comparison evidence: {exc}; keep the rollout in shadow until "
            'the gate\'s mismatch checks pass, or send "no_evidence": true (recorded)',
        )
    except (_BadChange, RolloutError) as exc:
        return json_error(400, "invalid_rollout_change", str(exc))
    except (UnleashAdminError, FlagFileError) as exc:
        return _unavailable(exc)
    if change.timeline_error is not None:  # the door's operator reads the log, not the answer
        _log.error(
            "rollout_event_not_in_ledger",
            error=change.timeline_error,
            revision=change.flag_revision,
        )
    return jsonify(
        {
            **change.after.to_dict(),
            "step_since": _step_since(state.runtime.ledger, change.after),
            "changed": change.changed,
            "no_evidence": change.no_evidence,
            "timeline_recorded": change.timeline_recorded,
            "timeline_error": change.timeline_error,
        }
    )


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


def _apply(
    controller: RolloutController, body: Mapping[str, Any], shadow_share: int
) -> RolloutChange:
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
    no_evidence = body.get("no_evidence", False)
    if not isinstance(no_evidence, bool):
        raise _BadChange(f'"no_evidence" must be true or false, got {no_evidence!r}')
    value = body[changes[0]]
    if changes[0] == "percentage":
        percentage = integral(value)
        if percentage is None:
            raise _BadChange(f'"percentage" must be a whole number 0-100, got {value!r}')
        return controller.set_percentage(
            percentage, actor=actor, reason=reason, no_evidence=no_evidence
        )
    if changes[0] == "stage":
        name, percent, share = _stage(value, shadow_share)
        return controller.set_stage(
            name,
            actor=actor,
            reason=reason,
            percent=percent,
            shadow_share=share,
            no_evidence=no_evidence,
        )
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
        {name: w for name, w in weights.items() if w is not None},
        actor=actor,
        reason=reason,
        no_evidence=no_evidence,
    )


def _stage(value: object, default_share: int) -> tuple[Stage, int | None, int]:
    """``"live"`` or ``{"name": "live", "percent": 5, "shadow_share": 10}``, checked."""
    spec = {"name": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or set(spec) - _STAGE_KEYS or "name" not in spec:
        raise _BadChange(
            '"stage" must be a stage name or {"name": ..., "percent": ..., "shadow_share": ...}'
            f", got {value!r}"
        )
    names = [stage.value for stage in Stage]
    if spec["name"] not in names:
        raise _BadChange(f'"stage" must be one of {", ".join(names)}, got {spec["name"]!r}')
    # Left out, percent is the stage's default; given, even as null, it must be a number.
    percent = _whole("percent", spec["percent"]) if "percent" in spec else None
    share = _whole("shadow_share", spec.get("shadow_share", default_share))
    return Stage(spec["name"]), percent, share


def _whole(key: str, value: object) -> int:
    """A whole percentage (``5`` or ``5.0``); _BadChange naming ``key`` otherwise."""
    number = integral(value)
    if number is None:
        raise _BadChange(f'"{key}" must be a whole percentage, got {value!r}')
    return number
