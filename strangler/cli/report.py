"""``strangler report``: the comparison report from the ledger, as text, HTML or JSON.

Exit codes: 0 the report was written; 1 the ledger could not be read or the report could
not be computed (a failure on our side, never bad input); 2 bad input.

On a SQLite ledger the report is computed at nice +10 (a thread of its own on Linux, the
process elsewhere), as the sidecar's report child is: SQLite computes in the reading
process, on the ledger's host, beside the sidecar whose intake it would otherwise slow
(bench/report_load.py: intake p99 117 ms at 1M orders under a report loop at the normal
priority, 8.4 ms under the sidecar's niced child). ``--normal-priority`` opts out. On
PostgreSQL the work is the server's, whose priority this process cannot lower: nothing
changes there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

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
from strangler.sidecar.report_process import NICENESS, lower_thread_priority

__all__ = ["parse_when", "report"]

_LEDGER_FAILED = 1
_BAD_INPUT = 2


_FORMATS = ("html", "json", "text")
_T = TypeVar("_T")


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
@click.option(
    "--normal-priority",
    is_flag=True,
    help="On a SQLite ledger, compute at your priority, not nice +10 (the default, so that "
    "a sidecar on the same ledger keeps the cores).",
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
    normal_priority: bool,
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

    def render(built: Report, step: Report | None, note: str) -> tuple[str, str]:
        return _render(fmt, built, step, note, base_url), built.verdict.status

    text, verdict = _build(
        window,
        thresholds,
        examples,
        with_step=fmt != "json",
        normal_priority=normal_priority,
        render=render,
    )
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"report written to {out} (verdict {verdict})", err=True)


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
    normal_priority: bool,
    render: Callable[[Report, Report | None, str], _T],
) -> _T:
    """``render`` of the report and the gate's current step's report (None, with why, when
    unknown). Computed and rendered at nice +10 on a SQLite file ledger unless
    ``normal_priority``.
    """
    try:
        settings = Settings.from_env()
        ledger = ledger_from_url(settings.effective_ledger_url)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_BAD_INPUT) from exc
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc

    def compute() -> _T:
        built = ledger.report(
            since=window[0],
            until=window[1],
            thresholds=thresholds,
            examples=examples,
        )
        if not with_step:
            return render(built, None, "")
        try:
            step = _step_report(ledger, settings, thresholds)
        except (StranglerError, ValueError) as exc:
            return render(built, None, f"the gate's step could not be judged: {exc}")
        return render(built, step, "")

    low = ledger.sqlite_file is not None and not normal_priority
    try:
        return _at_low_priority(compute) if low else compute()
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc
    except ValueError as exc:  # the input was checked: this is a failure on our side
        click.echo(f"error: the report could not be computed: {exc}", err=True)
        raise click.exceptions.Exit(_LEDGER_FAILED) from exc
    finally:
        ledger.close()


def _at_low_priority(compute: Callable[[], _T]) -> _T:
    """``compute()`` at nice +NICENESS: on a thread of its own where threads have their own
    priority (Linux), else in this process (a command that ends after the report)."""
    outcome: list[_T] = []
    failed: list[BaseException] = []

    def run() -> None:
        if not lower_thread_priority():
            os.nice(NICENESS)
        try:
            outcome.append(compute())
        except BaseException as exc:  # raised again in the caller's thread
            failed.append(exc)

    # A daemon thread: Ctrl-C in the waiting caller ends the command without the report.
    thread = threading.Thread(target=run, name="report", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return outcome[0]
