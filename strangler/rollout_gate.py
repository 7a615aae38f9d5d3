"""``strangler rollout advance``: the gate's IO around :func:`strangler.compare.gate.decide`.

One round: read the rollout, find the current step's window (orders routed since the
change that produced the flag's current revision, from ``rollout_events``), load the
report for that window, let the pure gate decide, then act: move one plan step, or on a
failure with rollback kill the flag (``legacy``) or send the new side to shadow only
(``shadow``: variants shadow=100, comparisons keep running), and hand in-flight instant
orders before payment back to the batch jobs. Every decision, holds and failures
included, goes to the audit log and to ``rollout_events`` with its evidence; a decision
that changes nothing keeps the flag's revision, so it does not restart the window.

What a plan step sets: normally the rollout percentage. With the rollout at 100 % and a
shadow variant (shadow-first: every user is compared), the plan steps the ``instant``
variant's weight instead (instant=s, shadow=100-s), so the users not yet on the instant
path stay in shadow and comparisons keep running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from strangler.compare.gate import (
    Action,
    Evidence,
    GateDecision,
    GatePolicy,
    RollbackTarget,
    decide,
)
from strangler.compare.report import Report
from strangler.compare.verdict import Thresholds
from strangler.handback import HandBack, hand_back_in_flight
from strangler.ledger import RolloutEvent, SqlLedger
from strangler.ledger.report_queries import load_report
from strangler.protocols import LegacyPath
from strangler.rollout import (
    FileRolloutController,
    RolloutChange,
    RolloutState,
    UnleashRolloutController,
)

__all__ = ["GateRound", "RolloutTimeline", "current_step", "gate_round", "window_start"]

_NEW_SIDE = ("instant", "shadow")
_SHADOW_ONLY = {"instant": 0, "shadow": 100}
_ALL = 100


@dataclass(frozen=True, slots=True)
class GateRound:
    """One round of the gate: the decision, the report it judged and what it changed.

    ``steps`` names what the plan's percentages set: ``rollout`` or ``instant weight``.
    """

    decision: GateDecision
    report: Report
    since: datetime | None
    applied: bool
    change: RolloutChange | None = None
    steps: str = "rollout"
    hand_back: HandBack | None = None


class RolloutTimeline(Protocol):
    """A ledger's rollout timeline (SqlLedger has one)."""

    def rollout_events(self) -> list[RolloutEvent]: ...


def window_start(ledger: RolloutTimeline, state: RolloutState) -> datetime | None:
    """When the current step began: the first rollout event with the flag's revision.

    Falls back to the latest event when none carries it (a change made outside strangler),
    and to None (every order) when there are no events.
    """
    events = ledger.rollout_events()
    current = [event.at for event in events if event.flag_revision == state.revision]
    if current:
        return min(current)
    return events[-1].at if events else None


def current_step(state: RolloutState) -> int:
    """Where the plan stands: the instant weight when shadow-first, else the rollout %."""
    return int(state.variants.get("instant", 0)) if _shadow_first(state) else state.rollout


def _shadow_first(state: RolloutState) -> bool:
    return state.rollout == _ALL and state.variants.get("shadow", 0) > 0


def gate_round(
    controller: FileRolloutController | UnleashRolloutController,
    ledger: SqlLedger,
    policy: GatePolicy,
    thresholds: Thresholds,
    *,
    actor: str,
    dry_run: bool = False,
    legacy: Callable[[], LegacyPath] | None = None,
) -> GateRound:
    """Judge the current step and act on it (nothing is changed or recorded on a dry run).

    ``legacy`` builds the legacy client a rollback hands orders back with (none: no
    hand-back). Raises RolloutError, UnleashAdminError, FlagFileError or LedgerError.
    """
    state = controller.show()
    step = current_step(state)
    since = window_start(ledger, state)
    report = load_report(ledger.engine, since=since, thresholds=thresholds, examples=0)
    evidence = Evidence(
        verdict=report.verdict.status,
        reasons=report.verdict.reasons,
        orders=sum(report.path(group).orders for group in _NEW_SIDE),
    )
    decision = decide(policy, enabled=state.enabled, rollout=step, evidence=evidence)
    steps = "instant weight" if _shadow_first(state) else "rollout"
    if dry_run:
        return GateRound(decision, report, since, applied=False, steps=steps)
    change = _act(controller, state, decision, actor)
    ledger.record_rollout_event(change)
    moved = None
    if decision.action is Action.ROLL_BACK and legacy is not None:
        moved = hand_back_in_flight(ledger, legacy(), reason=change.reason)
    return GateRound(
        decision, report, since, applied=True, change=change, hand_back=moved, steps=steps
    )


def _act(
    controller: FileRolloutController | UnleashRolloutController,
    state: RolloutState,
    decision: GateDecision,
    actor: str,
) -> RolloutChange:
    reason = f"rollout gate {decision.action}: {decision.reason}"
    if decision.action is Action.ADVANCE and _shadow_first(state):
        to = decision.to_rollout
        return controller.set_variants(
            {"instant": to, "shadow": 100 - to}, actor=actor, reason=reason
        )
    if decision.action is Action.ADVANCE:
        return controller.set_percentage(decision.to_rollout, actor=actor, reason=reason)
    if decision.action is Action.ROLL_BACK:
        if decision.rollback_to is RollbackTarget.SHADOW:
            return controller.set_variants(_SHADOW_ONLY, actor=actor, reason=reason)
        return controller.kill(actor=actor, reason=reason)
    record = RolloutChange(f"gate_{decision.action}", actor, reason, state, state)
    controller.audit.append(record)
    return record
