"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no external assets."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from strangler.compare.charts import mismatch_chart, rollout_chart, time_chart
from strangler.compare.report import AB_METRICS, Report
from strangler.compare.stats import Interval
from strangler.compare.tables import (
    HANDOFF_HEADERS,
    PATH_HEADERS,
    format_seconds,
    handoff_rows,
    path_rows,
)
from strangler.compare.timeline import describe_change

__all__ = ["render_html"]

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .7em; text-align: left; }
th { background: #f4f4f4; }
.pass { color: #11692b; } .hold { color: #8a5a00; } .fail { color: #b00020; }
.verdict { font-size: 1.6em; font-weight: bold; }
figure { margin: 0 0 1.5em; } figcaption { color: #555; }
"""


def render_html(report: Report) -> str:
    """The whole report as an HTML document (UTF-8 text)."""
    body = "\n".join(
        (
            _header(report),
            _verdict(report),
            _paths(report),
            _figure(time_chart(report), "Time from notification to terminal, per path"),
            _shadow(report),
            _figure(mismatch_chart(report), "Shadow mismatch rate per step, with 95 % band"),
            _arms(report),
            _rollout(report),
            _figure(rollout_chart(report), "Share of orders on instant and on shadow over time"),
        )
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>strangler report</title>"
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = ["".join(f"<td>{escape(str(cell))}</td>" for cell in row) for row in rows]
    body = "".join(f"<tr>{line}</tr>" for line in lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def _interval(rate: Interval) -> str:
    return (
        f"{rate.successes}/{rate.total} = {_pct(rate.rate)} [{_pct(rate.low)}, {_pct(rate.high)}]"
    )


def _header(report: Report) -> str:
    window = report.window
    since = window.effective_since.isoformat() if window.effective_since else "the start"
    lines = [
        "<h1>strangler comparison report</h1>",
        f"<p>Orders routed from {escape(since)} to {escape(window.until.isoformat())} "
        f"(generated {escape(report.generated_at.isoformat())}, schema "
        f"{report.schema_version}).</p>",
    ]
    if window.retention_horizon is not None:
        lines.append(
            f"<p>Retention horizon: orders received before "
            f"{escape(window.retention_horizon.isoformat())} are archived and not counted.</p>"
        )
    return "\n".join(lines)


def _verdict(report: Report) -> str:
    status = report.verdict.status
    rows = [[c.name, c.status, c.reason] for c in report.verdict.checks]
    return f"<h2>Verdict</h2><p class='verdict {status}'>{status.upper()}</p>" + _table(
        ["check", "status", "reason"], rows
    )


def _paths(report: Report) -> str:
    html = "<h2>Per path</h2>" + _table(PATH_HEADERS, path_rows(report))
    if causes := handoff_rows(report):
        html += "<h3>Hand-offs by cause</h3>" + _table(HANDOFF_HEADERS, causes)
    return html


def _shadow(report: Report) -> str:
    shadow = report.shadow
    reasons = ", ".join(f"{k} {v}" for k, v in shadow.not_compared_reasons.items()) or "none"
    html = (
        f"<h2>Shadow comparison</h2><p>{shadow.orders} shadow orders: {shadow.compared} compared, "
        f"{shadow.not_compared} not compared ({escape(reasons)}). Noise baseline: "
        f"{shadow.noise_compared} legacy orders compared with legacy's own dry run.</p>"
    )
    rows = [[s.step, _interval(s.shadow), _interval(s.noise)] for s in shadow.steps]
    html += _table(["step", "shadow mismatch [95 % CI]", "noise baseline [95 % CI]"], rows)
    if shadow.examples:
        items = "".join(
            f"<li><a href='{escape(e.story)}'>{escape(e.order_id)}</a>: "
            + escape("; ".join(f"{k}: {v}" for k, v in e.steps.items()))
            + f"<br><small>instant: {escape(str(dict(e.candidate)))}<br>"
            f"legacy: {escape(str(dict(e.baseline)))}</small></li>"
            for e in shadow.examples
        )
        html += f"<h3>Example mismatches</h3><ul>{items}</ul>"
    return html


def _arms(report: Report) -> str:
    ab = report.ab
    rows = [
        [
            metric,
            _interval(d.instant),
            _interval(d.legacy),
            f"{d.difference * 100:+.2f} pts [{d.low * 100:+.2f}, {d.high * 100:+.2f}]",
        ]
        for metric, d in ((m, ab.differences[m]) for m in AB_METRICS)
    ]
    for label, field in (("p50 time", "p50"), ("p99 time", "p99")):
        rows.append(
            [
                label,
                format_seconds(getattr(ab.instant_times, field)),
                format_seconds(getattr(ab.legacy_times, field)),
                "",
            ]
        )
    return (
        f"<h2>A/B arms</h2><p>Instant ({ab.instant_orders} orders) against legacy "
        f"({ab.legacy_orders} orders) routed in the same window.</p>"
        + _table(["metric", "instant", "legacy", "difference [95 % CI]"], rows)
    )


def _rollout(report: Report) -> str:
    rows = [
        [
            e.at.isoformat(),
            e.actor,
            describe_change(e),
            e.reason,
        ]
        for e in report.rollout
    ]
    return "<h2>Rollout timeline</h2>" + _table(["at", "actor", "change", "reason"], rows)
