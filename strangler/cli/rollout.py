"""``strangler rollout``: show and change the rollout of the routing flag.

Embedded mode rewrites the flag file (``STRANGLER_FLAGS_FILE``); server mode
(``STRANGLER_UNLEASH_URL`` set) goes through the Unleash Admin API
(``STRANGLER_UNLEASH_ADMIN_TOKEN``). Every change is appended to the audit log in
``STRANGLER_DATA_DIR`` and put on the ledger's rollout timeline by the controller; a
timeline write that fails is a warning on stderr, not a failure (the flag did change).
Exit codes: 0 done, 1 Unleash unreachable or refusing, 2 bad input or configuration
(nothing was written), 3 refused for want of comparison evidence (nothing was written;
``--no-evidence`` overrides, and is recorded).
"""

from __future__ import annotations

import functools
import getpass
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

import strangler.ledger  # light: SqlLedger (SQLAlchemy) loads when a command opens one
from strangler.exceptions import (
    ConfigurationError,
    EvidenceRequired,
    LedgerError,
    RolloutError,
    UnleashAdminError,
)
from strangler.rollout.controller import (
    FileRolloutController,
    RolloutChange,
    RolloutState,
    UnleashRolloutController,
    parse_percentage,
    parse_variant_weights,
    rollout_controller_from_settings,
)
from strangler.rollout.evidence import evidence_from
from strangler.rollout.stage import Stage
from strangler.rollout.timeline import LedgerOnDemand
from strangler.settings import Settings

if TYPE_CHECKING:
    from strangler.ledger import SqlLedger

__all__ = ["rollout"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_BAD_INPUT = 2
_UNLEASH_FAILED = 1
_NO_EVIDENCE = 3


def _controller() -> FileRolloutController | UnleashRolloutController:
    """The settings' controller: asks the gate before going live, records on the ledger."""
    settings = Settings.from_env()

    def open_ledger() -> SqlLedger:
        return strangler.ledger.ledger_from_url(settings.effective_ledger_url)

    controller = rollout_controller_from_settings(settings, timeline=LedgerOnDemand(open_ledger))
    controller.evidence = evidence_from(controller, open_ledger)
    return controller


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name: a container without a passwd entry
        return "unknown"


def _reporting_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn strangler's errors into a one-line message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except EvidenceRequired as exc:
            click.echo(
                f"refused: going live needs comparison evidence: {exc}\n"
                "Keep the rollout in shadow until `strangler rollout advance --dry-run` passes "
                "its mismatch checks, or repeat with --no-evidence to go live anyway (recorded "
                "in the audit log and on the timeline). Nothing was changed.",
                err=True,
            )
            raise click.exceptions.Exit(_NO_EVIDENCE) from exc
        except (RolloutError, ConfigurationError) as exc:
            click.echo(f"error: {exc}\nnothing was changed", err=True)
            raise click.exceptions.Exit(_BAD_INPUT) from exc
        except UnleashAdminError as exc:
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(_UNLEASH_FAILED) from exc

    return wrapper


_reason = click.option(
    "--reason", default="", help="Why, for the audit log (strongly recommended)."
)
_actor = click.option(
    "--actor", default=None, help="Who is making the change (default: your login name)."
)
_no_evidence = click.option(
    "--no-evidence",
    is_flag=True,
    help="Go live without a passing comparison verdict (recorded in the audit log and the "
    "timeline). Only a change that puts orders on instant where none were asks for it.",
)


@click.group("rollout")
def rollout() -> None:
    """Show and change the rollout of the city_orders_instant_processing flag."""


@rollout.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@_reporting_errors
def show(as_json: bool) -> None:
    """Show the flag: enabled, rollout %, variant weights, revision and mode."""
    state = _controller().show()
    click.echo(json.dumps(state.to_dict(), indent=2) if as_json else _describe(state))


@rollout.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("percentage")
@_reason
@_actor
@_no_evidence
@_reporting_errors
def set_percentage(percentage: str, reason: str, actor: str | None, no_evidence: bool) -> None:
    """Set the rollout to PERCENTAGE (0..100) of users; users already in stay in.

    From no order on instant to some, the current step needs a passing comparison
    verdict, or --no-evidence.
    """
    pct = parse_percentage(percentage)
    controller = _controller()
    change = controller.set_percentage(
        pct, actor=actor or _default_actor(), reason=reason, no_evidence=no_evidence
    )
    _report(controller, change)


@rollout.command("stage")
@click.argument("stage", type=click.Choice([s.value for s in Stage]))
@click.option(
    "--percent",
    type=click.IntRange(1, 100),
    help="shadow: the share of orders shadowed (default 100); live: the share on instant "
    "(default 1). off and complete take none.",
)
@click.option(
    "--shadow-share",
    type=click.IntRange(0, 99),
    help="live: the share of orders kept in shadow at least "
    "(default STRANGLER_LIVE_SHADOW_SHARE, 10).",
)
@_reason
@_actor
@_no_evidence
@_reporting_errors
def stage(
    stage: str,
    percent: int | None,
    shadow_share: int | None,
    reason: str,
    actor: str | None,
    no_evidence: bool,
) -> None:
    """Move to a migration stage: off, shadow, live or complete (docs/flags.md).

    Sets the rollout and the variant weights in one audited change. Going live (or
    complete) from no order on instant needs a passing comparison verdict, or
    --no-evidence. The kill switch is apart: `rollout kill` is never gated.
    """
    settings = Settings.from_env()
    controller = _controller()
    change = controller.set_stage(
        Stage(stage),
        actor=actor or _default_actor(),
        reason=reason,
        percent=percent,
        shadow_share=settings.live_shadow_share if shadow_share is None else shadow_share,
        no_evidence=no_evidence,
    )
    _report(controller, change)


@rollout.command("kill")
@_reason
@_actor
@click.option(
    "--hand-back",
    is_flag=True,
    help="Also hand in-flight instant orders that have not passed payment to the batch jobs.",
)
@_reporting_errors
def kill(reason: str, actor: str | None, hand_back: bool) -> None:
    """Disable the flag: every new order goes to the legacy path at once."""
    controller = _controller()
    _report(controller, controller.kill(actor=actor or _default_actor(), reason=reason))
    if hand_back:
        _hand_back(reason)


def _hand_back(reason: str) -> None:
    """Hand in-flight instant orders to the batch jobs; prints the count and the order ids."""
    from strangler.legacy_adapter import LegacyClient  # noqa: PLC0415
    from strangler.rollout.handback import hand_back_in_flight  # noqa: PLC0415 (only with --hand-back)

    settings = Settings.from_env()
    ledger = strangler.ledger.ledger_from_url(settings.effective_ledger_url)
    try:
        with LegacyClient.from_settings(settings) as legacy:
            moved = hand_back_in_flight(ledger, legacy, reason=reason)
    except LedgerError as exc:
        click.echo(f"error: the flag is killed, but the hand-back failed: {exc}", err=True)
        raise click.exceptions.Exit(_UNLEASH_FAILED) from exc
    finally:
        ledger.close()
    click.echo(moved.summary())
    for order_id in moved.moved:
        click.echo(f"  {order_id}")


@rollout.command("enable")
@_reason
@_actor
@_reporting_errors
def enable(reason: str, actor: str | None) -> None:
    """Enable the flag again, at the rollout percentage it had."""
    controller = _controller()
    _report(controller, controller.enable(actor=actor or _default_actor(), reason=reason))


@rollout.command("variants")
@click.argument("weights")
@_reason
@_actor
@_no_evidence
@_reporting_errors
def variants(weights: str, reason: str, actor: str | None, no_evidence: bool) -> None:
    """Split the rollout between variants, e.g. instant=70,shadow=30 (adds up to 100)."""
    parsed = parse_variant_weights(weights)
    controller = _controller()
    change = controller.set_variants(
        parsed, actor=actor or _default_actor(), reason=reason, no_evidence=no_evidence
    )
    _report(controller, change)


@rollout.command("advance")
@click.option("--plan", required=True, help="Rollout steps in percent, e.g. 1,5,25,50,100.")
@click.option(
    "--min-orders",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="New-side (instant + shadow) orders the step's window needs before advancing.",
)
@click.option("--max-mismatch", default="0.5%", show_default=True, help="Per-step mismatch rate.")
@click.option("--max-error-rate", default="1%", show_default=True, help="Instant failures.")
@click.option(
    "--max-p99", type=click.FloatRange(min=0, min_open=True), help="Instant p99, seconds."
)
@click.option("--dry-run", is_flag=True, help="Judge and print; change and record nothing.")
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Judge again every SECONDS while the gate holds or advances; stop on a failure.",
)
@click.option(
    "--max-hold",
    multiple=True,
    metavar="ORDERS|TIME",
    help="Hold budget, orders (10000) or time (30m, 6h, 1d), repeatable; past it a hold "
    "fails. Default 10000 orders or 24h, whichever comes first; none lifts it.",
)
@click.option(
    "--min-noise",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Noise sample size below which the noise baseline excuses nothing.",
)
@click.option(
    "--ab-tolerance",
    default="1%",
    show_default=True,
    help="A/B: an outcome rate difference whose interval lies beyond this fails.",
)
@click.option(
    "--min-ab-orders",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="A/B: orders each arm needs before a difference can fail.",
)
@click.option(
    "--no-evidence",
    is_flag=True,
    help="Let a window without compared shadow orders pass (by default it holds).",
)
@click.option("--rollback-on-fail", is_flag=True, help="On a failed check, roll back.")
@click.option(
    "--rollback-to",
    type=click.Choice(["legacy", "shadow"]),
    default="legacy",
    show_default=True,
    help="legacy: kill the flag; shadow: the new side runs in shadow only.",
)
@_actor
@_reporting_errors
def advance(
    plan: str,
    min_orders: int,
    max_mismatch: str,
    max_error_rate: str,
    max_p99: float | None,
    dry_run: bool,
    watch: float | None,
    max_hold: tuple[str, ...],
    min_noise: int,
    ab_tolerance: str,
    min_ab_orders: int,
    no_evidence: bool,
    rollback_on_fail: bool,
    rollback_to: str,
    actor: str | None,
) -> None:
    """Advance the rollout one plan step while the report's verdict passes.

    Exit codes: 0 advanced, 3 held, 4 a check failed (or the verdict could not be
    computed), 5 rolled back, 2 bad input, 1 the flag store failed. A decision the
    ledger's timeline could not take keeps its code, with a warning (and stops --watch).
    """
    from strangler.cli.advance import run_advance  # noqa: PLC0415 (loads the reports)

    raise click.exceptions.Exit(
        run_advance(
            plan=plan,
            min_orders=min_orders,
            max_mismatch=max_mismatch,
            max_error_rate=max_error_rate,
            max_p99=max_p99,
            dry_run=dry_run,
            watch=watch,
            rollback_on_fail=rollback_on_fail,
            rollback_to=rollback_to,
            actor=actor or f"rollout-gate ({_default_actor()})",
            max_hold=max_hold,
            min_noise=min_noise,
            ab_tolerance=ab_tolerance,
            min_ab_orders=min_ab_orders,
            no_evidence=no_evidence,
        )
    )


@rollout.command("push")
@_reporting_errors
def push() -> None:
    """Server mode: create the flag on the Unleash server from the flag file."""
    settings = Settings.from_env()
    controller = rollout_controller_from_settings(settings)
    if not isinstance(controller, UnleashRolloutController):
        raise RolloutError("`rollout push` needs server mode: set STRANGLER_UNLEASH_URL")
    created = controller.push(settings.flags_file)
    verb = "created" if created else "already exists; left as it is:"
    click.echo(f"{settings.flag_name} {verb} on {controller.admin.api_url}")
    click.echo(_describe(controller.show()))


def _describe(state: RolloutState) -> str:
    now = state.shares
    rows: list[tuple[str, Any]] = [
        ("flag", state.flag),
        ("mode", f"{state.mode} ({state.source})"),
        ("stage", _stage(state)),
        ("enabled", "yes" if state.enabled else "no (killed: every order goes to legacy)"),
        ("rollout", f"{state.rollout}%"),
        ("variants", _variants(state)),
        (
            "orders",
            f"instant {now.instant:g}%, shadow {now.shadow:g}%, legacy only "
            f"{100 - now.instant - now.shadow:g}%",
        ),
        ("revision", state.revision),
    ]
    return "\n".join(f"{name:<9} {value}" for name, value in rows)


def _report(
    controller: FileRolloutController | UnleashRolloutController, change: RolloutChange
) -> None:
    before, after = change.before, change.after
    moved = [
        f"{label} {show(before)} -> {show(after)}"
        for label, show in _FIELDS
        if show(before) != show(after)
    ]
    if before.stage is not after.stage:
        moved.insert(0, f"stage {before.stage} -> {after.stage}")
    if moved:
        click.echo(f"{', '.join(moved)} (revision {before.revision} -> {after.revision})")
        if change.no_evidence:
            click.echo("warning: went live without a passing comparison verdict (--no-evidence)")
        _warn_unrecorded(change)
    else:
        click.echo(f"no change: the flag was already so ({change.action})")
    click.echo(_describe(after))
    click.echo(f"{'audit':<9} {controller.audit.path}")


def _warn_unrecorded(change: RolloutChange) -> None:
    """Say on stderr that the timeline missed the change (the exit code stays a success)."""
    warning = change.timeline_warning()
    if warning is not None:
        click.echo(f"warning: {warning}", err=True)


def _stage(state: RolloutState) -> str:
    killed = "" if state.enabled else " (killed: legacy only until enabled again)"
    return f"{state.stage}{killed}"


def _variants(state: RolloutState) -> str:
    return " ".join(f"{name}={weight}%" for name, weight in state.variants.items()) or "none"


_FIELDS: tuple[tuple[str, Callable[[RolloutState], str]], ...] = (
    ("enabled", lambda state: _yes(state.enabled)),
    ("rollout", lambda state: f"{state.rollout}%"),
    ("variants", _variants),
)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
