"""The body of ``strangler rollout advance``: options to policy, rounds, terminal output."""

from __future__ import annotations

import time

import click
import sqlalchemy as sa

from strangler.compare.gate import Action, GatePolicy, RollbackTarget, parse_plan
from strangler.compare.verdict import Thresholds
from strangler.exceptions import FlagFileError, LedgerError, RolloutError
from strangler.ledger import ledger_from_url
from strangler.legacy_adapter import LegacyClient
from strangler.rollout import rollout_controller_from_settings
from strangler.rollout_gate import GateRound, gate_round
from strangler.settings import Settings

__all__ = ["parse_rate", "run_advance"]

_STORE_FAILED = 1


def parse_rate(value: str, option: str) -> float:
    """``"0.5%"`` -> 0.005, ``"0.005"`` -> 0.005; RolloutError naming the option otherwise."""
    text = value.strip()
    try:
        return float(text.removesuffix("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise RolloutError(
            f"{option} must be a rate such as 0.5% or 0.005, got {value!r}"
        ) from None


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
) -> int:
    """Run the gate once, or every ``watch`` seconds until it fails or the plan is done.

    Returns the exit code; bad input raises RolloutError (exit 2 in the command).
    """
    try:
        policy = GatePolicy(
            plan=parse_plan(plan),
            min_orders=min_orders,
            rollback_on_fail=rollback_on_fail,
            rollback_to=RollbackTarget(rollback_to),
        )
        thresholds = Thresholds(
            min_orders=min_orders,
            max_mismatch=parse_rate(max_mismatch, "--max-mismatch"),
            max_error_rate=parse_rate(max_error_rate, "--max-error-rate"),
            max_p99_s=max_p99,
        )
    except ValueError as exc:
        raise RolloutError(str(exc)) from exc
    settings = Settings.from_env()
    controller = rollout_controller_from_settings(settings)
    try:
        ledger = ledger_from_url(settings.effective_ledger_url)
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        return _STORE_FAILED
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
            time.sleep(watch)
    except (LedgerError, FlagFileError, sa.exc.SQLAlchemyError) as exc:
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
    click.echo(f"window: orders routed since {window}; verdict {done.report.verdict.status}")
    for check in done.report.verdict.checks:
        click.echo(f"  {check.status:<4} {check.name}: {check.reason}")
    if done.change is not None and done.change.changed:
        click.echo(f"flag revision {done.change.before.revision} -> {done.change.after.revision}")
    if done.hand_back is not None:
        click.echo(done.hand_back.summary())
