"""``strangler report``: the comparison report from the ledger, as text, HTML or JSON.

Exit codes: 0 the report was written; 1 the ledger could not be read or the report could
not be computed (a failure on our side, never bad input); 2 bad input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from strangler.exceptions import ConfigurationError, LedgerError, RolloutError, StranglerError
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.ledger.report_queries import check_window
from strangler.report.render_json import render_json
from strangler.report.render_text import render_text
from strangler.report.report import Report
from strangler.report.verdict import Thresholds
from strangler.rollout.controller import rollout_controller_from_settings
from strangler.rollout.gate import window_start
from strangler.rollout.policy import parse_rate
from strangler.settings import Settings

__all__ = ["parse_when", "report"]

_LEDGER_FAILED = 1
_BAD_INPUT = 2


_FORMATS = ("html", "json", "text")


def parse_when(value: str, option: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC. Raises click.BadParameter."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2030-01-31T12:00:00Z", param_hint=option
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _fraction(value: str, option: str) -> float:
    try:
        return parse_rate(value, option)
    except RolloutError as exc:
        raise click.BadParameter(
            f"{value!r} is not a rate like 0.5% or 0.005", param_hint=option
        ) from exc


@click.command("report")
@click.option("--since", help="Orders routed at or after this ISO time (UTC if no zone).")
@click.option("--until", help="Orders routed before this ISO time (default: now).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="text", show_default=True)
@click.option(
    "--base-url",
    help="HTML: the sidecar's URL, for absolute links to order stories (default: plain text).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Example mismatches to show.",
)
@click.option(
    "--min-orders",
    type=click.IntRange(min=0),
    default=Thresholds().min_orders,
    show_default=True,
    help="Verdict: instant+shadow orders needed to judge.",
)
@click.option(
    "--max-mismatch",
    default="0.5%",
    show_default=True,
    help="Verdict: highest mismatch rate per step.",
)
@click.option(
    "--max-error-rate",
    default="1%",
    show_default=True,
    help="Verdict: highest share of instant orders failed or fallen back.",
)
@click.option(
    "--max-p99",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Verdict: highest instant p99 time to terminal, seconds.",
)
@click.option(
    "--min-noise",
    type=click.IntRange(min=0),
    default=Thresholds().min_noise,
    show_default=True,
    help="Verdict: noise sample size below which the noise baseline excuses nothing.",
)
@click.option(
    "--ab-tolerance",
    default="1%",
    show_default=True,
    help="Verdict: an A/B outcome difference whose interval lies beyond this fails.",
)
@click.option(
    "--require-shadow/--no-require-shadow",
    default=True,
    show_default=True,
    help="Verdict: hold when nothing was compared (--no-require-shadow: pass).",
)
def report(
    since: str | None,
    until: str | None,
    fmt: str,
    base_url: str | None,
    out: Path | None,
    examples: int,
    min_orders: int,
    max_mismatch: str,
    max_error_rate: str,
    max_p99: float | None,
    min_noise: int,
    ab_tolerance: str,
    require_shadow: bool,
) -> None:
    """Report on the orders routed in a window: paths, shadow mismatches, A/B arms, verdict."""
    try:
        thresholds = Thresholds(
            min_orders=min_orders,
            max_mismatch=_fraction(max_mismatch, "--max-mismatch"),
            max_error_rate=_fraction(max_error_rate, "--max-error-rate"),
            max_p99_s=max_p99,
            min_noise=min_noise,
            ab_tolerance=_fraction(ab_tolerance, "--ab-tolerance"),
            require_shadow=require_shadow,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    window = (
        parse_when(since, "--since") if since else None,
        parse_when(until, "--until") if until else None,
    )
    try:
        check_window(*window, examples)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    built, step, note = _build(window, thresholds, examples, with_step=fmt != "json")
    text = _render(fmt, built, step, note, base_url)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"report written to {out} (verdict {built.verdict.status})", err=True)


def _render(fmt: str, built: Report, step: Report | None, note: str, base_url: str | None) -> str:
    if fmt == "json":
        return render_json(built)
    if fmt == "text":
        return render_text(built, step, note)
    from strangler.report.render_html import render_html  # noqa: PLC0415 (matplotlib loads ~1 s)

    return render_html(built, step, note, base_url=base_url)


def _step_report(ledger: SqlLedger, settings: Settings, thresholds: Thresholds) -> Report:
    """The report of the gate's current step: orders routed since the latest change."""
    state = rollout_controller_from_settings(settings).show()
    since = window_start(ledger, state)
    return ledger.report(since=since, thresholds=thresholds, examples=0)


def _build(
    window: tuple[datetime | None, datetime | None],
    thresholds: Thresholds,
    examples: int,
    *,
    with_step: bool,
) -> tuple[Report, Report | None, str]:
    """The report, the gate's current step's report (None, with why, when unknown)."""
    try:
        settings = Settings.from_env()
        ledger = ledger_from_url(settings.effective_ledger_url)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_BAD_INPUT) from exc
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc
    try:
        built = ledger.report(
            since=window[0],
            until=window[1],
            thresholds=thresholds,
            examples=examples,
        )
        if not with_step:
            return built, None, ""
        try:
            return built, _step_report(ledger, settings, thresholds), ""
        except (StranglerError, ValueError) as exc:
            return built, None, f"the gate's step could not be judged: {exc}"
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc
    except ValueError as exc:  # the input was checked: this is a failure on our side
        click.echo(f"error: the report could not be computed: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc
    finally:
        ledger.close()
