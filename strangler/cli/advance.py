"""The body of ``strangler rollout advance``: options to policy, rounds, terminal output."""

from __future__ import annotations

import time

import click

from strangler.exceptions import FlagFileError, LedgerError, RolloutError
from strangler.ledger import ledger_from_url
from strangler.legacy_adapter import LegacyClient
from strangler.report.verdict import Check, Thresholds
from strangler.rollout.controller import rollout_controller_from_settings
from strangler.rollout.gate import GateRound, blind_round, gate_round
from strangler.rollout.policy import (
    Action,
    GatePolicy,
    RollbackTarget,
    parse_hold_budget,
    parse_plan,
    parse_rate,
)
from strangler.settings import Settings

__all__ = ["run_advance"]

_STORE_FAILED = 1


def run_advance(
    *,
    plan: str,
    min_orders: int,
    max_mismatch: str,
    max_error_rate: str,
    max_p99: float | None,
    dry_run: bool,
    watch: float | None,
    rollback_on_fail: bool,
    rollback_to: str,
    actor: str,
    max_hold: tuple[str, ...] = (),
    min_noise: int = Thresholds().min_noise,
    ab_tolerance: str = "1%",
    min_ab_orders: int = Thresholds().min_ab_orders,
    no_evidence: bool = False,
) -> int:
    """Run the gate once, or every ``watch`` seconds until it fails or the plan is done.

    The hold budget (``max_hold``) bounds a watch: a hold past it is a failure.
    Returns the exit code; bad input raises RolloutError (exit 2 in the command).
    """
    try:
        hold_orders, hold_s = parse_hold_budget(max_hold)
        policy = GatePolicy(
            plan=parse_plan(plan),
            min_orders=min_orders,
            rollback_on_fail=rollback_on_fail,
            rollback_to=RollbackTarget(rollback_to),
            max_hold_orders=hold_orders,
            max_hold_s=hold_s,
        )
        thresholds = Thresholds(
            min_orders=min_orders,
            max_mismatch=parse_rate(max_mismatch, "--max-mismatch"),
            max_error_rate=parse_rate(max_error_rate, "--max-error-rate"),
            max_p99_s=max_p99,
            min_noise=min_noise,
            ab_tolerance=parse_rate(ab_tolerance, "--ab-tolerance"),
            min_ab_orders=min_ab_orders,
            require_shadow=not no_evidence,
        )
    except ValueError as exc:
        raise RolloutError(str(exc)) from exc
    settings = Settings.from_env()
    controller = rollout_controller_from_settings(settings)
    try:
        ledger = ledger_from_url(settings.effective_ledger_url)
    except LedgerError as exc:
        # No ledger, no verdict: a failure (rolled back when asked), never a pass.
        click.echo(f"error: {exc}", err=True)
        blind = blind_round(
            controller,
            policy,
            actor=actor,
            cause=f"the ledger could not be opened: {exc}",
            dry_run=dry_run,
        )
        _print(blind)
        return blind.decision.exit_code
    try:
        while True:
            done = gate_round(
                controller,
                ledger,
                policy,
                thresholds,
                actor=actor,
                dry_run=dry_run,
                legacy=lambda: LegacyClient.from_settings(settings),
            )
            _print(done)
            finished = policy.next_step(done.decision.to_rollout) is None
            if watch is None or done.decision.action in _FINAL or finished or dry_run:
                return done.decision.exit_code
            if done.not_recorded is not None:
                # The next round would not find where this step began on the timeline.
                click.echo("stopped watching: the next round needs this decision on the timeline")
                return done.decision.exit_code
            time.sleep(watch)
    except (LedgerError, FlagFileError) as exc:
        click.echo(f"error: {exc}", err=True)
        return _STORE_FAILED
    finally:
        ledger.close()


_FINAL = frozenset({Action.FAIL, Action.ROLL_BACK})


def _print(done: GateRound) -> None:
    decision = done.decision
    window = done.since.isoformat() if done.since else "the first order"
    verb = {
        Action.ADVANCE: f"advance {decision.from_rollout}% -> {decision.to_rollout}%",
        Action.HOLD: f"hold at {decision.from_rollout}%",
        Action.FAIL: f"fail at {decision.from_rollout}% (rollout unchanged)",
        Action.ROLL_BACK: f"roll back to {decision.rollback_to} from {decision.from_rollout}%",
    }[decision.action]
    prefix = "dry run, would " if not done.applied else ""
    click.echo(f"gate: {prefix}{verb} ({done.steps}): {decision.reason}")
    click.echo(f"window: orders routed since {window}; verdict {done.evaluation.verdict}")
    for check in done.evaluation.checks:
        progress = f" [{check.compared} of {check.needed}]" if _needs_more(check) else ""
        click.echo(f"  {check.status:<4} {check.name}{progress}: {check.reason}")
    if done.change is not None and done.change.changed:
        click.echo(f"flag revision {done.change.before.revision} -> {done.change.after.revision}")
    if done.hand_back is not None:
        click.echo(done.hand_back.summary())
    if done.hand_back_failed is not None:
        click.echo(f"warning: rolled back, but the hand-back failed: {done.hand_back_failed}")
    warning = done.change.timeline_warning() if done.change is not None else None
    if warning is not None:
        click.echo(f"warning: {warning}", err=True)
    elif done.not_recorded is not None and done.change is not None:
        click.echo(f"warning: the ledger did not record this decision: {done.not_recorded}")


def _needs_more(check: Check) -> bool:
    return (
        check.status == "hold"
        and check.compared is not None
        and check.needed is not None
        and check.compared < check.needed
    )
