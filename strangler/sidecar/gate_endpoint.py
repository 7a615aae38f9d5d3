"""``GET|POST /_strangler/gate``: the rollout gate's verdict on the current step, for CD tools.

Read-only: it runs :func:`strangler.rollout.gate.evaluate_gate` (what ``strangler rollout
advance --dry-run`` judges) and changes nothing, so it needs no token. The gate's options
come as query parameters or, for a Flagger webhook's POST, as the body's ``metadata``
(which wins); their names are the ``rollout advance`` options without dashes, with the
same defaults (``plan`` defaults to ``1,5,25,50,100``).

The answer is the evaluation's JSON plus ``outcome`` (``pass``, ``hold`` or ``fail``)
and ``orders`` (new-side orders in the window, and how many are needed). ``outcome`` is
``pass`` when the gate would advance, or at the plan's last step when the verdict
passes; ``fail`` when it would fail or roll back; otherwise ``hold``. The status code is
200 when the outcome is the one ``ok_when`` asks for (``pass`` by default; ``fail`` for
a Flagger rollback webhook; ``any`` for Argo Rollouts' web provider, which treats every
non-2xx as an error), else 423 for a hold, 412 for a failure and 409 for a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.exceptions import StranglerError
from strangler.report.verdict import Thresholds
from strangler.rollout.gate import GateEvaluation, evaluate_gate
from strangler.rollout.policy import (
    Action,
    GatePolicy,
    RollbackTarget,
    parse_hold_budget,
    parse_plan,
    parse_rate,
)
from strangler.sidecar.errors import json_error
from strangler.sidecar.state import sidecar_state

__all__ = ["GATE_PATH", "OUTCOME_STATUS", "GateQuery", "blueprint", "outcome"]

GATE_PATH = "/_strangler/gate"
DEFAULT_PLAN = "1,5,25,50,100"
#: The status of each outcome when it is not the one ``ok_when`` asks for (then 200).
OUTCOME_STATUS = {"pass": 409, "hold": 423, "fail": 412}
_OK_WHEN = ("pass", "fail", "any")
_FLAGS = ("no_evidence", "rollback_on_fail")
_KNOWN = frozenset(
    {
        "plan",
        "min_orders",
        "max_mismatch",
        "max_error_rate",
        "max_p99",
        "max_hold",
        "min_noise",
        "ab_tolerance",
        "min_ab_orders",
        "rollback_to",
        "ok_when",
        *_FLAGS,
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

blueprint = Blueprint("gate", __name__)
_log = structlog.get_logger(__name__)


class _BadParameter(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class GateQuery:
    """The gate's options as a controller sent them, and which outcome is answered 200."""

    policy: GatePolicy
    thresholds: Thresholds
    ok_when: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> GateQuery:
        """Options by ``rollout advance`` name (``min_orders``...); ValueError naming a bad one."""
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            raise _BadParameter(f"unknown gate parameter(s) {unknown}; known: {sorted(_KNOWN)}")
        ok_when = params.get("ok_when", "pass")
        if ok_when not in _OK_WHEN:
            raise _BadParameter(f"ok_when must be one of {list(_OK_WHEN)}, got {ok_when!r}")
        min_orders = _count(params, "min_orders", Thresholds().min_orders)
        holds = [part for part in params.get("max_hold", "").split(",") if part.strip()]
        try:
            hold_orders, hold_s = parse_hold_budget(holds)
            policy = GatePolicy(
                plan=parse_plan(params.get("plan", DEFAULT_PLAN)),
                min_orders=min_orders,
                rollback_on_fail=_flag(params, "rollback_on_fail"),
                rollback_to=RollbackTarget(params.get("rollback_to", "legacy")),
                max_hold_orders=hold_orders,
                max_hold_s=hold_s,
            )
            thresholds = Thresholds(
                min_orders=min_orders,
                max_mismatch=_rate(params, "max_mismatch", "0.5%"),
                max_error_rate=_rate(params, "max_error_rate", "1%"),
                max_p99_s=float(params["max_p99"]) if params.get("max_p99") else None,
                min_noise=_count(params, "min_noise", Thresholds().min_noise),
                ab_tolerance=_rate(params, "ab_tolerance", "1%"),
                min_ab_orders=_count(params, "min_ab_orders", Thresholds().min_ab_orders),
                require_shadow=not _flag(params, "no_evidence"),
            )
        except (ValueError, StranglerError) as exc:
            raise _BadParameter(str(exc)) from exc
        return cls(policy, thresholds, ok_when)


def _count(params: Mapping[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise _BadParameter(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _rate(params: Mapping[str, str], name: str, default: str) -> float:
    return parse_rate(params.get(name, default), name)


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise _BadParameter(f"{name} must be true or false, got {value!r}")
    return value in _TRUE


def outcome(evaluation: GateEvaluation, policy: GatePolicy) -> str:
    """``pass``, ``hold`` or ``fail``: what a CD controller should do with this step."""
    action = evaluation.decision.action
    if action is Action.ADVANCE:
        return "pass"
    if action in (Action.FAIL, Action.ROLL_BACK):
        return "fail"
    finished = policy.next_step(evaluation.step) is None
    if finished and evaluation.state.enabled and evaluation.verdict == "pass":
        return "pass"
    return "hold"


@blueprint.route(GATE_PATH, methods=["GET", "POST"])
def gate() -> Response:
    """The gate's verdict on the current step; the status code says what to do with it."""
    try:
        params = {**request.args.to_dict(), **_webhook_metadata()}
        query = GateQuery.parse(params)
    except _BadParameter as exc:
        return json_error(400, "invalid_gate_parameter", str(exc))
    state = sidecar_state()
    try:
        evaluation = evaluate_gate(
            state.rollout, state.runtime.ledger, query.policy, query.thresholds
        )
    except StranglerError as exc:
        return json_error(503, "rollout_unreadable", f"could not read the rollout: {exc}")
    return _answer(evaluation, query)


def _webhook_metadata() -> dict[str, str]:
    """A Flagger webhook's ``metadata`` (all strings); nothing for a GET or an empty POST."""
    if request.method != "POST" or not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _BadParameter("the POST body must be a JSON object such as Flagger sends")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _BadParameter("metadata must be an object of strings (Flagger's webhook metadata)")
    _log.info(
        "gate_webhook",
        canary=body.get("name"),
        namespace=body.get("namespace"),
        phase=body.get("phase"),
    )
    return metadata


def _answer(evaluation: GateEvaluation, query: GateQuery) -> Response:
    result = outcome(evaluation, query.policy)
    ok = query.ok_when in (result, "any")
    report = evaluation.report
    new_side = sum(report.path(group).orders for group in ("instant", "shadow")) if report else 0
    body: dict[str, Any] = {
        "outcome": result,
        "orders": {"new_side": new_side, "needed": query.policy.min_orders},
        **evaluation.to_json(),
    }
    response = jsonify(body)
    response.status_code = 200 if ok else OUTCOME_STATUS[result]
    return response
