"""The report as plain-text tables for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from strangler.report.report import Report
from strangler.report.stats import Interval
from strangler.report.tables import (
    AB_HEADERS,
    CHECK_HEADERS,
    HANDOFF_HEADERS,
    PATH_HEADERS,
    ab_rows,
    check_rows,
    format_seconds,
    handoff_rows,
    headline,
    path_rows,
)
from strangler.report.timeline import describe_change

__all__ = ["render_text"]


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


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _interval(rate: Interval) -> str:
    return f"{rate.successes}/{rate.total} {_pct(rate.rate)} [{_pct(rate.low)}, {_pct(rate.high)}]"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") + "Z" if value else "the start"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
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


def _paths(report: Report) -> str:
    return "Per path (time = notification to terminal)\n" + _table(PATH_HEADERS, path_rows(report))


def _handoffs(report: Report) -> str:
    rows = handoff_rows(report)
    if not rows:
        return ""
    return "Hand-offs to the batch jobs, by cause\n" + _table(HANDOFF_HEADERS, rows)


def _shadow(report: Report) -> str:
    shadow = report.shadow
    reasons = ", ".join(f"{k} {v}" for k, v in shadow.not_compared_reasons.items()) or "none"
    lines = [
        f"Shadow: {shadow.orders} orders, {shadow.compared} compared, "
        f"{shadow.not_compared} not compared ({reasons}); "
        f"noise baseline: {shadow.noise_compared} legacy orders compared with themselves",
    ]
    if shadow.steps:
        rows = [[s.step, _interval(s.shadow), _interval(s.noise)] for s in shadow.steps]
        lines.append(_table(["step", "shadow mismatch [95% CI]", "noise baseline [95% CI]"], rows))
    for example in shadow.examples:
        diffs = "; ".join(f"{step}: {detail}" for step, detail in example.steps.items())
        lines.append(f"  mismatch {example.order_id}: {diffs}  ({example.story})")
    return "\n".join(lines)


def _arms(report: Report) -> str:
    ab = report.ab
    rows = [
        [metric, instant, legacy, f"{diff} *" if shifted else diff]
        for metric, instant, legacy, diff, shifted in ab_rows(report)
    ]
    rows.append(
        [
            "p50 / p99 time",
            *(
                f"{format_seconds(t.p50)} / {format_seconds(t.p99)}"
                for t in (ab.instant_times, ab.legacy_times)
            ),
            "",
        ]
    )
    title = f"A/B arms: instant ({ab.instant_orders} orders) vs legacy ({ab.legacy_orders} orders)"
    note = "* the 95% interval excludes 0: the arms differ"
    return f"{title}\n{_table(AB_HEADERS, rows)}\n{note}"


def _rollout(report: Report) -> str:
    if not report.rollout:
        return "Rollout timeline: no changes recorded"
    rows = [
        [
            _when(e.at),
            e.actor,
            describe_change(e),
            e.reason,
        ]
        for e in report.rollout
    ]
    return "Rollout timeline\n" + _table(["at", "actor", "change", "reason"], rows)


def _verdict(report: Report) -> str:
    verdict = report.verdict
    return f"Verdict over this report's window: {verdict.status.upper()}\n" + _table(
        CHECK_HEADERS, check_rows(verdict.checks)
    )


def _step(step: Report | None) -> str:
    if step is None:
        return ""
    return "Gate's current step, check by check\n" + _table(
        CHECK_HEADERS, check_rows(step.verdict.checks)
    )
