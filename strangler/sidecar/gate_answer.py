"""The rollout gate's answer to ``/_strangler/gate``, without HTTP: options in, status and body out.

Shared by the endpoint (strangler.sidecar.gate_endpoint, in the intake's process) and the
report child (strangler.sidecar.report_child), which computes it: the window's report is
seconds of CPU on a big ledger. The endpoint reads the rollout (:class:`RolloutState`,
sent to the child as :func:`state_to_json`), the child judges the step with
:func:`gate_answer` over its own read-only snapshot, and the endpoint answers the body as
it came. The same ledger, rollout and time give the same answer wherever it is computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strangler.exceptions import StranglerError
from strangler.report.verdict import Thresholds
from strangler.rollout.controller import RolloutState
from strangler.rollout.gate import GateEvaluation, GateLedger, evaluate_gate
from strangler.rollout.policy import (
    Action,
    GatePolicy,
    RollbackTarget,
    parse_hold_budget,
    parse_plan,
    parse_rate,
)

__all__ = [
    "DEFAULT_PLAN",
    "OUTCOME_STATUS",
    "FixedRollout",
    "GateAnswer",
    "GateParameterError",
    "GateQuery",
    "gate_answer",
    "outcome",
    "state_from_json",
    "state_to_json",
]

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


class GateParameterError(ValueError):
    """A gate option a controller sent is unknown or malformed (the message names it)."""


@dataclass(frozen=True, slots=True)
class GateQuery:
    """The gate's options as a controller sent them, and which outcome is answered 200."""

    policy: GatePolicy
    thresholds: Thresholds
    ok_when: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> GateQuery:
        """Options by ``rollout advance`` name (``min_orders``...); GateParameterError if bad."""
        unknown = sorted(set(params) - _KNOWN)
        if unknown:
            raise GateParameterError(
                f"unknown gate parameter(s) {unknown}; known: {sorted(_KNOWN)}"
            )
        ok_when = params.get("ok_when", "pass")
        if ok_when not in _OK_WHEN:
            raise GateParameterError(f"ok_when must be one of {list(_OK_WHEN)}, got {ok_when!r}")
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
            raise GateParameterError(str(exc)) from exc
        return cls(policy, thresholds, ok_when)


def _count(params: Mapping[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise GateParameterError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _rate(params: Mapping[str, str], name: str, default: str) -> float:
    return parse_rate(params.get(name, default), name)


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise GateParameterError(f"{name} must be true or false, got {value!r}")
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


@dataclass(frozen=True, slots=True)
class GateAnswer:
    """The endpoint's answer: its status code and its JSON body."""

    status: int
    body: dict[str, Any]

    def to_json(self) -> str:
        """One line of JSON, as the report child sends it."""
        return json.dumps({"status": self.status, "body": self.body}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GateAnswer:
        """The answer :meth:`to_json` wrote; ValueError when ``text`` is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("body"), dict):
            raise ValueError(f"not a gate answer: {text[:80]!r}")
        return cls(int(data["status"]), data["body"])


@dataclass(frozen=True, slots=True)
class FixedRollout:
    """A rollout read once (by the endpoint): what the evaluation reads in its place."""

    state: RolloutState

    def show(self) -> RolloutState:
        """The rollout as it was read."""
        return self.state


def gate_answer(
    rollout: FixedRollout, ledger: GateLedger, query: GateQuery, *, now: datetime | None = None
) -> GateAnswer:
    """Judge the current step (:func:`evaluate_gate`, changing nothing) and answer it.

    The body is the evaluation's JSON plus ``outcome`` and ``orders`` (new-side orders in
    the window, and how many are needed); the status is 200 when the outcome is the one
    ``ok_when`` asks for, else :data:`OUTCOME_STATUS`'s.
    """
    evaluation = evaluate_gate(rollout, ledger, query.policy, query.thresholds, now=now)
    result = outcome(evaluation, query.policy)
    report = evaluation.report
    new_side = sum(report.path(group).orders for group in ("instant", "shadow")) if report else 0
    body: dict[str, Any] = {
        "outcome": result,
        "orders": {"new_side": new_side, "needed": query.policy.min_orders},
        **evaluation.to_json(),
    }
    ok = query.ok_when in (result, "any")
    return GateAnswer(200 if ok else OUTCOME_STATUS[result], body)


def state_to_json(state: RolloutState) -> dict[str, Any]:
    """The rollout's fields, JSON-ready (for the report child); :func:`state_from_json` reads it."""
    return {
        "flag": state.flag,
        "mode": state.mode,
        "source": state.source,
        "enabled": state.enabled,
        "rollout": state.rollout,
        "variant_weights": dict(state.variant_weights),
        "revision": state.revision,
    }


def state_from_json(data: Mapping[str, Any]) -> RolloutState:
    """The rollout :func:`state_to_json` wrote; ValueError naming a missing field."""
    try:
        return RolloutState(
            flag=str(data["flag"]),
            mode=str(data["mode"]),
            source=str(data["source"]),
            enabled=bool(data["enabled"]),
            rollout=int(data["rollout"]),
            variant_weights={str(k): int(v) for k, v in data["variant_weights"].items()},
            revision=str(data["revision"]),
        )
    except KeyError as exc:
        raise ValueError(f"the rollout state has no {exc.args[0]!r}") from exc
