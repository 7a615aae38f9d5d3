"""The report as plain-text tables for a terminal."""

from __future__ import annotations

from datetime import datetime

from strangler.report.report import Report
from strangler.report.tables import (
    Table,
    ab_table,
    check_table,
    format_instant,
    handoff_table,
    headline,
    path_table,
    rollout_table,
    shadow_table,
)

__all__ = ["layout", "render_text"]


def render_text(report: Report, step: Report | None = None, step_note: str = "") -> str:
    """The report as aligned text tables, ending in a newline.

    ``step``: the report of the gate's current step, shown first beside this report's
    verdict (None: unknown, ``step_note`` says why).
    """
    sections = (
        _header(report),
        "\n".join(headline(report, step, step_note)),
        _step(step),
        _paths(report),
        _handoffs(report),
        _shadow(report),
        _arms(report),
        _rollout(report),
        _verdict(report),
    )
    return "\n\n".join(section for section in sections if section) + "\n"


def _when(value: datetime | None) -> str:
    return format_instant(value) if value else "the start"


def layout(table: Table) -> str:
    """``table`` as aligned columns under a dashed rule; a marked cell ends in ``" *"``."""
    rows = [
        [f"{cell} *" if (r, c) in table.marked else cell for c, cell in enumerate(row)]
        for r, row in enumerate(table.rows)
    ]
    cells = [list(table.headers), *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _header(report: Report) -> str:
    window = report.window
    lines = [
        f"strangler report (schema {report.schema_version}), "
        f"generated {_when(report.generated_at)}",
        f"window: orders routed from {_when(window.effective_since)} to {_when(window.until)}",
    ]
    if window.retention_horizon is not None and window.effective_since == window.retention_horizon:
        lines.append(
            f"retention horizon: orders received before {_when(window.retention_horizon)} "
            "are archived and not counted"
        )
    return "\n".join(lines)


def _titled(title: str, table: Table) -> str:
    return f"{title}\n{layout(table)}" if table.rows else ""


def _paths(report: Report) -> str:
    return _titled("Per path (time = notification to terminal)", path_table(report))


def _handoffs(report: Report) -> str:
    return _titled("Hand-offs to the batch jobs, by cause", handoff_table(report))


def _shadow(report: Report) -> str:
    shadow = report.shadow
    reasons = ", ".join(f"{k} {v}" for k, v in shadow.not_compared_reasons.items()) or "none"
    lines = [
        f"Shadow: {shadow.orders} orders, {shadow.compared} compared, "
        f"{shadow.not_compared} not compared ({reasons}); "
        f"noise baseline: {shadow.noise_compared} legacy orders compared with themselves",
    ]
    if (steps := shadow_table(report)).rows:
        lines.append(layout(steps))
    for example in shadow.examples:
        diffs = "; ".join(f"{step}: {detail}" for step, detail in example.steps.items())
        lines.append(f"  mismatch {example.order_id}: {diffs}  ({example.story})")
    return "\n".join(lines)


def _arms(report: Report) -> str:
    ab = report.ab
    title = f"A/B arms: instant ({ab.instant_orders} orders) vs legacy ({ab.legacy_orders} orders)"
    note = "* the 95 % interval excludes 0: the arms differ"
    return f"{title}\n{layout(ab_table(report))}\n{note}"


def _rollout(report: Report) -> str:
    if not report.rollout:
        return "Rollout timeline: no changes recorded"
    return _titled("Rollout timeline", rollout_table(report))


def _verdict(report: Report) -> str:
    verdict = report.verdict
    return _titled(
        f"Verdict over this report's window: {verdict.status.upper()}", check_table(verdict.checks)
    )


def _step(step: Report | None) -> str:
    if step is None:
        return ""
    return _titled("Gate's current step, check by check", check_table(step.verdict.checks))
