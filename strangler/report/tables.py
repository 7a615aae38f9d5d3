"""The report's tables every rendering shows alike, as headers and rows of cells.

render_text.py and render_html.py lay these out (aligned columns, HTML); the cells are
already text or numbers, so both show the same figures.
"""

from __future__ import annotations

from strangler.report.report import AB_METRICS, ArmDifference, PathReport, Report
from strangler.report.stats import Interval
from strangler.report.verdict import Check

__all__ = [
    "AB_HEADERS",
    "CHECK_HEADERS",
    "HANDOFF_HEADERS",
    "PATH_HEADERS",
    "ab_rows",
    "check_rows",
    "format_seconds",
    "handoff_rows",
    "headline",
    "path_rows",
    "progress",
]

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
CHECK_HEADERS = ("check", "status", "compared", "reason")
AB_HEADERS = ("metric", "instant", "legacy", "difference [95% CI]")


def format_seconds(value: float | None) -> str:
    """``value`` seconds in a readable unit (ms below one second, min above ten minutes)."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 600:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def path_rows(report: Report) -> list[tuple[object, ...]]:
    """One row per path (group), in :data:`PATH_HEADERS` order."""
    return [_path_row(path) for path in report.paths]


def handoff_rows(report: Report) -> list[tuple[object, ...]]:
    """One row per path and hand-off cause, in :data:`HANDOFF_HEADERS` order."""
    return [(p.group, c.handoff, c.orders, c.cause) for p in report.paths for c in p.causes]


def _path_row(path: PathReport) -> tuple[object, ...]:
    times = path.times
    return (
        path.group,
        path.orders,
        path.in_flight,
        ", ".join(f"{k} {v}" for k, v in path.outcomes.items()) or "-",
        *(format_seconds(v) for v in (times.p50, times.p90, times.p99, times.max)),
        path.fallbacks,
        path.legacy_owned,
        path.errored_orders,
    )


def progress(check: Check) -> str:
    """``"330 of 765"`` while a check needs more orders, else the sample it judged (or ``-``)."""
    if check.compared is None:
        return "-"
    if check.needed is None or check.compared >= check.needed:
        return str(check.compared)
    return f"{check.compared} of {check.needed}"


def check_rows(checks: tuple[Check, ...]) -> list[tuple[str, str, str, str]]:
    """One row per verdict check, in :data:`CHECK_HEADERS` order."""
    return [(c.name, c.status.upper(), progress(c), c.reason) for c in checks]


def _rate(rate: Interval) -> str:
    pct = f"{rate.rate * 100:.2f}% [{rate.low * 100:.2f}%, {rate.high * 100:.2f}%]"
    return f"{rate.successes}/{rate.total} {pct}"


def _difference(found: ArmDifference) -> str:
    empty = [
        arm for arm, r in (("instant", found.instant), ("legacy", found.legacy)) if not r.total
    ]
    if empty:
        return f"n/a (no {' or '.join(empty)} orders)"
    return f"{found.difference * 100:+.2f} pts [{found.low * 100:+.2f}, {found.high * 100:+.2f}]"


def ab_rows(report: Report) -> list[tuple[str, str, str, str, bool]]:
    """One row per A/B metric in :data:`AB_HEADERS` order, then whether it shifted.

    Shifted: both arms have orders and the difference's 95 % interval excludes 0.
    """
    rows = []
    for metric in AB_METRICS:
        found = report.ab.differences[metric]
        shifted = bool(found.instant.total and found.legacy.total) and (
            found.low > 0 or found.high < 0
        )
        rows.append(
            (metric, _rate(found.instant), _rate(found.legacy), _difference(found), shifted)
        )
    return rows


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
        when = since.strftime("%Y-%m-%d %H:%M:%SZ") if since else "the first order"
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
