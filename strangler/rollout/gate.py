"""``strangler rollout advance``: the gate's IO around :func:`strangler.rollout.policy.decide`.

:func:`evaluate_gate` is the read-only half, shared by the CLI, the demo and HTTP
readers: read the rollout, find the current step's window (orders routed since the
latest change that produced the flag's current revision, from ``rollout_events``), load the
report for that window and let the pure gate decide; a verdict that cannot be computed
is a failure (:func:`strangler.rollout.policy.fail_safe`), never a pass or a crash.
:func:`gate_round` then acts: move one plan step, or on a
failure with rollback kill the flag (``legacy``) or send the new side to shadow only
(``shadow``: variants shadow=100, comparisons keep running), and hand in-flight instant
orders before payment back to the batch jobs. Every decision, holds and failures
included, goes through the controller to the audit log and to ``rollout_events`` with its
evidence (the controller's one rule: a timeline write that fails is reported in the round,
``not_recorded``, and fails nothing); a decision that changes nothing keeps the flag's
revision, so it does not restart the window.

A step the timeline does not hold (the flag was changed outside strangler, or a change's
timeline write failed) has no known start, and the window since the latest recorded
change would mix two steps. The gate then judges the step from now on: a round puts an
``observed`` change on the timeline (the step's start from then on) and holds for data.

What a plan step sets: normally the rollout percentage. With the rollout at 100 % and a
shadow variant (shadow-first: every user is compared), the plan steps the ``instant``
variant's weight instead (instant=s, shadow=100-s), so the users not yet on the instant
path stay in shadow and comparisons keep running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from strangler.exceptions import LedgerError
from strangler.ledger import RolloutEvent, SqlLedger
from strangler.protocols import LegacyPath
from strangler.report.report import Report
from strangler.report.verdict import Check, Thresholds
from strangler.rollout.controller import (
    FileRolloutController,
    RolloutChange,
    RolloutState,
    UnleashRolloutController,
)
from strangler.rollout.handback import HandBack, hand_back_in_flight
from strangler.rollout.policy import (
    Action,
    Evidence,
    GateDecision,
    GatePolicy,
    RollbackTarget,
    decide,
    fail_safe,
)

__all__ = [
    "GateEvaluation",
    "GateLedger",
    "GateRound",
    "RolloutReader",
    "RolloutTimeline",
    "blind_round",
    "current_step",
    "evaluate_gate",
    "gate_round",
    "unrecorded_step",
    "window_start",
]

_log = structlog.get_logger()
_NEW_SIDE = ("instant", "shadow")
_SHADOW_ONLY = {"instant": 0, "shadow": 100}
_ALL = 100


class RolloutReader(Protocol):
    """What the evaluation reads the rollout through (every rollout controller has it)."""

    def show(self) -> RolloutState: ...


@dataclass(frozen=True, slots=True)
class GateEvaluation:
    """The gate's verdict on the current step, judged without acting.

    ``decision`` is what :func:`gate_round` would do; ``report`` the window's report
    (None when it could not be computed, then ``error`` says why and the decision is a
    failure); ``since`` the window start (None: every order); ``step`` where the plan
    stands and ``steps`` what its percentages set (``rollout`` or ``instant weight``);
    ``unrecorded_after`` the timeline's latest change when it did not produce the flag's
    setting (the step is unrecorded, so the window starts now).
    """

    decision: GateDecision
    state: RolloutState
    step: int
    steps: str
    since: datetime | None
    evaluated_at: datetime
    report: Report | None
    error: str | None = None
    unrecorded_after: RolloutEvent | None = None

    @property
    def unrecorded(self) -> bool:
        """Whether the timeline did not hold the step (judged from ``evaluated_at`` on)."""
        return self.unrecorded_after is not None

    @property
    def checks(self) -> tuple[Check, ...]:
        """The verdict's checks, with reasons, compared and needed counts (none on error)."""
        return self.report.verdict.checks if self.report is not None else ()

    @property
    def verdict(self) -> str:
        """``pass``, ``hold`` or ``fail``: ``fail`` when the verdict could not be computed,
        ``hold`` when the step is unrecorded (nothing judged yet)."""
        if self.report is not None:
            return self.report.verdict.status
        return "hold" if self.unrecorded else "fail"

    @property
    def comparison_passes(self) -> bool:
        """True when the window has compared shadow orders and every mismatch check passes."""
        judged = [c for c in self.checks if c.name.startswith("mismatch")]
        return bool(judged) and all(c.status == "pass" and c.compared for c in judged)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``GET /_strangler/gate``, ``rollout advance --json``)."""
        decision = self.decision
        return {
            "decision": {
                "action": decision.action.value,
                "from": decision.from_rollout,
                "to": decision.to_rollout,
                "reason": decision.reason,
                "rollback_to": decision.rollback_to.value if decision.rollback_to else None,
                "exit_code": decision.exit_code,
            },
            "verdict": self.verdict,
            "comparison_passes": self.comparison_passes,
            "step": self.step,
            "steps": self.steps,
            "enabled": self.state.enabled,
            "flag_revision": self.state.revision,
            "window": {
                "since": self.since.isoformat() if self.since else None,
                "until": self.evaluated_at.isoformat(),
            },
            "checks": [
                {
                    "name": c.name,
                    "status": c.status,
                    "reason": c.reason,
                    "observed": c.observed,
                    "threshold": c.threshold,
                    "compared": c.compared,
                    "needed": c.needed,
                }
                for c in self.checks
            ],
            "error": self.error,
            "unrecorded_step": self.unrecorded,
        }


@dataclass(frozen=True, slots=True)
class GateRound:
    """One round of the gate: its evaluation and what it changed.

    ``applied`` is False on a dry run; ``change`` is the audited change (None on a dry
    run), ``hand_back`` the orders a rollback moved to the batch jobs. ``not_recorded``
    says why the decision is not on the ledger's timeline (it is made and audited all the
    same), ``hand_back_failed`` why a rollback's hand-back failed.
    """

    evaluation: GateEvaluation
    applied: bool
    change: RolloutChange | None = None
    hand_back: HandBack | None = None
    not_recorded: str | None = None
    hand_back_failed: str | None = None

    @property
    def decision(self) -> GateDecision:
        """The decision acted on."""
        return self.evaluation.decision

    @property
    def report(self) -> Report | None:
        """The report judged (None when it could not be computed)."""
        return self.evaluation.report

    @property
    def since(self) -> datetime | None:
        """The window start (None: every order)."""
        return self.evaluation.since

    @property
    def steps(self) -> str:
        """What the plan's percentages set: ``rollout`` or ``instant weight``."""
        return self.evaluation.steps


class RolloutTimeline(Protocol):
    """A ledger's rollout timeline (SqlLedger has one)."""

    def rollout_events(self) -> list[RolloutEvent]: ...


class GateLedger(RolloutTimeline, Protocol):
    """What the gate reads of a ledger: its rollout timeline and the report (SqlLedger)."""

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        thresholds: Thresholds | None = None,
        examples: int = 10,
        now: datetime | None = None,
    ) -> Report: ...


def window_start(ledger: RolloutTimeline, state: RolloutState) -> datetime | None:
    """When the current step began: the latest change that produced the flag's revision.

    Records that changed nothing (a gate hold or failure) do not start a step, and going
    back to an earlier configuration (50 % -> 60 % -> 50 %) starts a new one. Falls back
    to the latest change when none carries the revision (a change made outside
    strangler), and to None (every order) when there are none.
    """
    return _step_start(_changes(ledger), state)


def unrecorded_step(ledger: RolloutTimeline, state: RolloutState) -> RolloutEvent | None:
    """The timeline's latest change when it did not produce the flag's revision, else None.

    Such a step has no known start: the flag was changed outside strangler, or the
    change's timeline write failed. None too when the timeline holds no change at all
    (every order is the window then).
    """
    return _unrecorded(_changes(ledger), state)


def _changes(ledger: RolloutTimeline) -> list[RolloutEvent]:
    """The timeline's records that changed the flag (a gate hold or failure did not)."""
    return [event for event in ledger.rollout_events() if event.changed is not False]


def _step_start(changes: list[RolloutEvent], state: RolloutState) -> datetime | None:
    current = [event.at for event in changes if event.flag_revision == state.revision]
    if current:
        return max(current)
    return changes[-1].at if changes else None


def _unrecorded(changes: list[RolloutEvent], state: RolloutState) -> RolloutEvent | None:
    if changes and changes[-1].flag_revision != state.revision:
        return changes[-1]
    return None


def current_step(state: RolloutState) -> int:
    """Where the plan stands: the instant weight when shadow-first, else the rollout %."""
    return int(state.variants.get("instant", 0)) if _shadow_first(state) else state.rollout


def _shadow_first(state: RolloutState) -> bool:
    return state.rollout == _ALL and state.variants.get("shadow", 0) > 0


def evaluate_gate(
    controller: RolloutReader,
    ledger: GateLedger,
    policy: GatePolicy,
    thresholds: Thresholds,
    *,
    now: datetime | None = None,
    unrecorded_from_now: bool = True,
) -> GateEvaluation:
    """Judge the current step's window and say what the gate would do; changes nothing.

    A step the timeline does not hold (:func:`unrecorded_step`) is judged from ``now``
    on: nothing is routed in it yet, so the decision holds for data (``unrecorded``, no
    report). ``unrecorded_from_now=False`` judges it from the latest recorded change
    instead, for readers whose figures do not depend on the step (comparison evidence).
    A verdict that cannot be computed (the ledger unreadable, a figure out of range) is
    returned as a failing evaluation with ``error`` set, never raised. Raises only what
    reading the rollout raises (RolloutError, UnleashAdminError, FlagFileError).
    """
    state = controller.show()
    now = now or datetime.now(UTC)
    step = current_step(state)
    steps = "instant weight" if _shadow_first(state) else "rollout"
    since: datetime | None = None
    try:
        changes = _changes(ledger)
        latest = _unrecorded(changes, state) if unrecorded_from_now else None
        if latest is not None:
            return _unrecorded_evaluation(policy, state, (step, steps), now, latest)
        since = _step_start(changes, state)
        report = ledger.report(since=since, thresholds=thresholds, examples=0, now=now)
    except Exception as exc:  # the design's fail-safe: an unknown verdict is a failure
        cause = f"{type(exc).__name__}: {exc}"
        _log.warning("gate_verdict_failed", error=cause)
        decision = fail_safe(policy, enabled=state.enabled, rollout=step, cause=cause)
        return GateEvaluation(decision, state, step, steps, since, now, None, error=cause)
    status = report.verdict.status
    evidence = Evidence(
        verdict=status,
        # The checks that decided: the failing ones on a failure, else the holding ones.
        reasons=tuple(f"{c.name}: {c.reason}" for c in report.verdict.checks if c.status == status),
        orders=sum(report.path(group).orders for group in _NEW_SIDE),
        age_s=(now - since).total_seconds() if since is not None else None,
    )
    decision = decide(policy, enabled=state.enabled, rollout=step, evidence=evidence)
    return GateEvaluation(decision, state, step, steps, since, now, report)


def _unrecorded_evaluation(
    policy: GatePolicy,
    state: RolloutState,
    plan: tuple[int, str],
    now: datetime,
    latest: RolloutEvent,
) -> GateEvaluation:
    """The step starts now: no order is routed in it yet, so the decision holds for data."""
    evidence = Evidence(
        verdict="hold",
        reasons=(
            f"the flag's setting (revision {state.revision}) is not on the rollout "
            "timeline (changed outside strangler, or its timeline write failed), so this "
            f"step is judged from {now.isoformat()} on",
        ),
        orders=0,
        age_s=0.0,
    )
    step, steps = plan
    decision = decide(policy, enabled=state.enabled, rollout=step, evidence=evidence)
    return GateEvaluation(decision, state, step, steps, now, now, None, unrecorded_after=latest)


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
    """Judge the current step (:func:`evaluate_gate`) and act on it.

    Nothing is changed or recorded on a dry run. The decision goes through the controller,
    whose timeline is set to ``ledger``: the step windows are read from there. A timeline
    write that fails is the controller's one rule (``not_recorded``), never a failed
    round. ``legacy`` builds the legacy client a rollback hands orders back with (none:
    no hand-back); a hand-back that fails after the rollback is logged, not raised
    (``hand_back_failed``). Raises RolloutError, UnleashAdminError or FlagFileError when
    the flag cannot be read or changed.
    """
    evaluation = evaluate_gate(controller, ledger, policy, thresholds)
    decision = evaluation.decision
    if dry_run:
        return GateRound(evaluation, applied=False)
    observed = _observe_step(ledger, evaluation, actor) if evaluation.unrecorded else None
    controller.timeline = ledger
    change = _act(controller, evaluation, actor)
    done = GateRound(
        evaluation, applied=True, change=change, not_recorded=observed or change.timeline_error
    )
    if decision.action is not Action.ROLL_BACK or legacy is None:
        return done
    try:
        moved = hand_back_in_flight(ledger, legacy(), reason=change.reason)
    except Exception as exc:  # the rollback is made; the hand-back is not
        failure = f"{type(exc).__name__}: {exc}"
        _log.warning("gate_hand_back_failed", error=failure)
        return replace(done, hand_back_failed=failure)
    return replace(done, hand_back=moved)


def _observe_step(ledger: SqlLedger, evaluation: GateEvaluation, actor: str) -> str | None:
    """Start the unrecorded step on the timeline at the evaluation's time; the error if not.

    The flag is not changed, so nothing goes to the audit log: this records what the gate
    found. Later rounds judge the step from here (:func:`window_start`).
    """
    state = evaluation.state
    latest = evaluation.unrecorded_after
    event = RolloutEvent(
        at=evaluation.evaluated_at,
        actor=actor,
        from_rollout=latest.to_rollout if latest is not None else None,
        to_rollout=state.rollout,
        reason=(
            f"rollout gate observed: the flag's setting (revision {state.revision}) was "
            "not on the timeline; its step starts here"
        ),
        flag_revision=state.revision,
        kind="observed",
        enabled=state.enabled,
        instant_weight=float(state.variants.get("instant", 0)),
        shadow_weight=float(state.variants.get("shadow", 0)),
        stage=state.stage.value,
        changed=True,
    )
    try:
        ledger.record_rollout_event(event)
    except LedgerError as exc:
        _log.warning("gate_step_not_observed", error=str(exc), flag_revision=state.revision)
        return f"{type(exc).__name__}: {exc}"
    return None


def blind_round(
    controller: FileRolloutController | UnleashRolloutController,
    policy: GatePolicy,
    *,
    actor: str,
    cause: str,
    dry_run: bool = False,
) -> GateRound:
    """A round without a ledger (it could not be opened): the verdict is unknown, a failure.

    Rolls back when the policy says so; nothing can be recorded on the ledger's timeline,
    which ``not_recorded`` says. Raises what reading or changing the flag raises.
    """
    state = controller.show()
    step = current_step(state)
    steps = "instant weight" if _shadow_first(state) else "rollout"
    decision = fail_safe(policy, enabled=state.enabled, rollout=step, cause=cause)
    evaluation = GateEvaluation(
        decision, state, step, steps, None, datetime.now(UTC), None, error=cause
    )
    if dry_run:
        return GateRound(evaluation, applied=False)
    change = _act(controller, evaluation, actor)
    return GateRound(evaluation, applied=True, change=change, not_recorded=cause)


def _act(
    controller: FileRolloutController | UnleashRolloutController,
    evaluation: GateEvaluation,
    actor: str,
) -> RolloutChange:
    state, decision = evaluation.state, evaluation.decision
    reason = f"rollout gate {decision.action}: {decision.reason}"
    # A gate advance is judged by the gate's own rules; going live on it without a passing
    # comparison (rollout advance --no-evidence) is recorded as such.
    unproven = not evaluation.comparison_passes
    if decision.action is Action.ADVANCE and _shadow_first(state):
        to = decision.to_rollout
        return controller.set_variants(
            {"instant": to, "shadow": 100 - to},
            actor=actor,
            reason=reason,
            no_evidence=unproven,
            gate_decision="advance",
        )
    if decision.action is Action.ADVANCE:
        return controller.set_percentage(
            decision.to_rollout,
            actor=actor,
            reason=reason,
            no_evidence=unproven,
            gate_decision="advance",
        )
    if decision.action is Action.ROLL_BACK and decision.rollback_to is RollbackTarget.SHADOW:
        return controller.set_variants(
            _SHADOW_ONLY, actor=actor, reason=reason, gate_decision="rollback"
        )
    if decision.action is Action.ROLL_BACK:
        return controller.kill(actor=actor, reason=reason, gate_decision="rollback")
    return controller.note(str(decision.action), actor=actor, reason=reason)
