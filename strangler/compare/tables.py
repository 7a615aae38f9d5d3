"""The report's tables every rendering shows alike, as headers and rows of cells.

render_text.py and render_html.py lay these out (aligned columns, HTML); the cells are
already text or numbers, so both show the same figures.
"""

from __future__ import annotations

from strangler.compare.report import PathReport, Report

__all__ = ["HANDOFF_HEADERS", "PATH_HEADERS", "format_seconds", "handoff_rows", "path_rows"]

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
