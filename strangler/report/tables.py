"""The report's tables, built once: headers and rows of text cells that every rendering shows.

render_text.py lays a :class:`Table` out as aligned columns and render_html.py as an HTML
table; neither builds a cell, a title or a summary sentence itself, so both show the same
figures in the same words.
House wording: a percentage has a space before ``%`` (``20.00 %``, ``95 % CI``), a rate
reads ``successes/total = rate [low, high]`` as the verdict's reasons do, a time in a
table reads ``2030-01-01 12:00:00Z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from strangler.report.report import AB_METRICS, ArmDifference, PathReport, Report, TimeStats
from strangler.report.stats import format_rate
from strangler.report.timeline import describe_change
from strangler.report.verdict import Check

__all__ = [
    "AB_HEADERS",
    "AB_TITLE",
    "CHECK_HEADERS",
    "HANDOFF_HEADERS",
    "HANDOFF_TITLE",
    "PATH_HEADERS",
    "PATH_TITLE",
    "REPORT_TITLE",
    "ROLLOUT_HEADERS",
    "ROLLOUT_TITLE",
    "SHADOW_HEADERS",
    "SHADOW_TITLE",
    "STEP_TITLE",
    "VERDICT_TITLE",
    "Table",
    "ab_summary",
    "ab_table",
    "check_table",
    "format_instant",
    "format_seconds",
    "handoff_table",
    "header_lines",
    "headline",
    "path_table",
    "progress",
    "rollout_table",
    "shadow_summary",
    "shadow_table",
]

REPORT_TITLE = "strangler comparison report"
STEP_TITLE = "The gate's current step, check by check"
PATH_TITLE = "Per path (time = notification to terminal)"
HANDOFF_TITLE = "Hand-offs to the batch jobs, by cause"
SHADOW_TITLE = "Shadow comparison"
AB_TITLE = "A/B arms"
ROLLOUT_TITLE = "Rollout timeline"
VERDICT_TITLE = "Verdict over this report's window"

PATH_HEADERS = (
    "path",
    "orders",
    "in flight",
    "outcomes",
    "p50",
    "p90",
    "p99",
    "max",
    "fallbacks",
    "claim lost",
    "errors",
)
HANDOFF_HEADERS = ("path", "kind", "orders", "cause")
SHADOW_HEADERS = ("step", "shadow mismatch [95 % CI]", "noise baseline [95 % CI]")
AB_HEADERS = ("metric", "instant", "legacy", "difference [95 % CI]")
ROLLOUT_HEADERS = ("at", "actor", "change", "reason")
CHECK_HEADERS = ("check", "status", "compared", "reason")


@dataclass(frozen=True, slots=True)
class Table:
    """One table: its headers, its rows of text cells, and the cells to mark.

    ``marked`` holds (row, column) indexes of cells a rendering sets apart (an A/B
    difference whose interval excludes 0). Raises ValueError for a row whose length is
    not the headers' or a marked cell outside the rows.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    marked: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(
                    f"row {row!r} has {len(row)} cells for {len(self.headers)} headers"
                )
        for row_index, column in self.marked:
            if not (0 <= row_index < len(self.rows) and 0 <= column < len(self.headers)):
                raise ValueError(f"marked cell {(row_index, column)!r} lies outside the table")


def format_seconds(value: float | None) -> str:
    """``value`` seconds in a readable unit (ms below one second, min above ten minutes)."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 600:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def format_instant(value: datetime) -> str:
    """``value`` (UTC) to the second: ``2030-01-01 12:00:00Z``."""
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def header_lines(report: Report) -> list[str]:
    """The lines under the title: the window, when the report was made, the retention horizon."""
    window = report.window
    since = format_instant(window.effective_since) if window.effective_since else "the start"
    lines = [
        f"Orders routed from {since} to {format_instant(window.until)} "
        f"(generated {format_instant(report.generated_at)}, schema {report.schema_version})."
    ]
    horizon = window.retention_horizon
    if horizon is not None and window.effective_since == horizon:
        lines.append(
            f"Retention horizon: orders received before {format_instant(horizon)} are "
            "archived and not counted."
        )
    return lines


def shadow_summary(report: Report) -> str:
    """The shadow orders in one sentence: compared, not compared and why, the noise sample."""
    shadow = report.shadow
    reasons = ", ".join(f"{k} {v}" for k, v in shadow.not_compared_reasons.items()) or "none"
    return (
        f"{shadow.orders} shadow orders: {shadow.compared} compared, {shadow.not_compared} "
        f"not compared ({reasons}). Noise baseline (repeatability): {shadow.noise_compared} "
        "legacy orders judged twice by the per-order API."
    )


def ab_summary(report: Report) -> str:
    """What the A/B arms compare: the orders on each arm in this report's window."""
    ab = report.ab
    return (
        f"Instant ({ab.instant_orders} orders) against legacy ({ab.legacy_orders} orders) "
        "routed in the same window."
    )


def path_table(report: Report) -> Table:
    """One row per path (group); times from notification to terminal."""
    return Table(PATH_HEADERS, tuple(_path_row(path) for path in report.paths))


def _path_row(path: PathReport) -> tuple[str, ...]:
    times = path.times
    return (
        path.group,
        str(path.orders),
        str(path.in_flight),
        ", ".join(f"{k} {v}" for k, v in path.outcomes.items()) or "-",
        *(format_seconds(v) for v in (times.p50, times.p90, times.p99, times.max)),
        str(path.fallbacks),
        str(path.legacy_owned),
        str(path.errored_orders),
    )


def handoff_table(report: Report) -> Table:
    """One row per path and hand-off cause (no rows: no hand-offs)."""
    rows = tuple(
        (p.group, c.handoff, str(c.orders), c.cause) for p in report.paths for c in p.causes
    )
    return Table(HANDOFF_HEADERS, rows)


def shadow_table(report: Report) -> Table:
    """One row per compared step: shadow mismatch beside the noise baseline."""
    rows = tuple((s.step, format_rate(s.shadow), format_rate(s.noise)) for s in report.shadow.steps)
    return Table(SHADOW_HEADERS, rows)


def _difference(found: ArmDifference) -> str:
    empty = [
        arm for arm, r in (("instant", found.instant), ("legacy", found.legacy)) if not r.total
    ]
    if empty:
        return f"n/a (no {' or '.join(empty)} orders)"
    return f"{found.difference * 100:+.2f} pts [{found.low * 100:+.2f}, {found.high * 100:+.2f}]"


def _shifted(found: ArmDifference) -> bool:
    """Both arms have orders and the difference's 95 % interval excludes 0."""
    both = bool(found.instant.total and found.legacy.total)
    return both and (found.low > 0 or found.high < 0)


def _time_row(label: str, field: str, instant: TimeStats, legacy: TimeStats) -> tuple[str, ...]:
    return (
        label,
        format_seconds(getattr(instant, field)),
        format_seconds(getattr(legacy, field)),
        "",
    )


def ab_table(report: Report) -> Table:
    """One row per A/B metric, then the arms' p50 and p99 times.

    A metric's difference is marked when it shifted: both arms have orders and its 95 %
    interval excludes 0.
    """
    ab = report.ab
    found = [(metric, ab.differences[metric]) for metric in AB_METRICS]
    rows = tuple(
        (metric, format_rate(d.instant), format_rate(d.legacy), _difference(d))
        for metric, d in found
    ) + tuple(
        _time_row(f"{field} time", field, ab.instant_times, ab.legacy_times)
        for field in ("p50", "p99")
    )
    marked = frozenset((index, 3) for index, (_, d) in enumerate(found) if _shifted(d))
    return Table(AB_HEADERS, rows, marked)


def rollout_table(report: Report) -> Table:
    """One row per change on the rollout timeline (no rows: no changes recorded)."""
    rows = tuple(
        (format_instant(e.at), e.actor, describe_change(e), e.reason) for e in report.rollout
    )
    return Table(ROLLOUT_HEADERS, rows)


def progress(check: Check) -> str:
    """``"330 of 765"`` while a check needs more orders, else the sample it judged (or ``-``)."""
    if check.compared is None:
        return "-"
    if check.needed is None or check.compared >= check.needed:
        return str(check.compared)
    return f"{check.compared} of {check.needed}"


def check_table(checks: tuple[Check, ...]) -> Table:
    """One row per verdict check."""
    return Table(
        CHECK_HEADERS, tuple((c.name, c.status.upper(), progress(c), c.reason) for c in checks)
    )


def _deciding(checks: tuple[Check, ...], status: str) -> str:
    names = [c.name for c in checks if c.status == status]
    return f" ({', '.join(names)})" if names and status != "pass" else ""


def headline(report: Report, step: Report | None, step_note: str = "") -> list[str]:
    """The verdict lines: the gate's current step first, then every order in the report.

    ``step`` is the report of the current step's window (orders routed since the latest
    rollout change), None when unknown; ``step_note`` then says why.
    """
    lines = []
    if step is not None:
        since = step.window.effective_since
        when = format_instant(since) if since else "the first order"
        lines.append(
            f"Gate (current step, orders routed since {when}): "
            f"{step.verdict.status.upper()}{_deciding(step.verdict.checks, step.verdict.status)}"
        )
    else:
        lines.append(f"Gate (current step): unknown{f': {step_note}' if step_note else ''}")
    lines.append(
        f"All orders in this report's window: {report.verdict.status.upper()}"
        f"{_deciding(report.verdict.checks, report.verdict.status)}"
        " (the figures below; the gate judges only its current step)"
    )
    return lines
