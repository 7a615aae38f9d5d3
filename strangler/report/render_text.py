"""The report as plain-text tables for a terminal."""

from __future__ import annotations

from strangler.report.report import Report
from strangler.report.tables import (
    AB_TITLE,
    HANDOFF_TITLE,
    PATH_TITLE,
    REPORT_TITLE,
    ROLLOUT_TITLE,
    SHADOW_TITLE,
    STEP_TITLE,
    VERDICT_TITLE,
    Table,
    ab_summary,
    ab_table,
    check_table,
    handoff_table,
    header_lines,
    headline,
    path_table,
    rollout_table,
    shadow_summary,
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
    return "\n".join((REPORT_TITLE, *header_lines(report)))


def _titled(title: str, table: Table) -> str:
    return f"{title}\n{layout(table)}" if table.rows else ""


def _paths(report: Report) -> str:
    return _titled(PATH_TITLE, path_table(report))


def _handoffs(report: Report) -> str:
    return _titled(HANDOFF_TITLE, handoff_table(report))


def _shadow(report: Report) -> str:
    lines = [SHADOW_TITLE, shadow_summary(report)]
    if (steps := shadow_table(report)).rows:
        lines.append(layout(steps))
    for example in report.shadow.examples:
        diffs = "; ".join(f"{step}: {detail}" for step, detail in example.steps.items())
        lines.append(f"  mismatch {example.order_id}: {diffs}  ({example.story})")
    return "\n".join(lines)


def _arms(report: Report) -> str:
    note = "* the 95 % interval excludes 0: the arms differ"
    return f"{AB_TITLE}\n{ab_summary(report)}\n{layout(ab_table(report))}\n{note}"


def _rollout(report: Report) -> str:
    if not report.rollout:
        return f"{ROLLOUT_TITLE}: no changes recorded"
    return _titled(ROLLOUT_TITLE, rollout_table(report))


def _verdict(report: Report) -> str:
    return _titled(
        f"{VERDICT_TITLE}: {report.verdict.status.upper()}", check_table(report.verdict.checks)
    )


def _step(step: Report | None) -> str:
    if step is None:
        return ""
    return _titled(STEP_TITLE, check_table(step.verdict.checks))
