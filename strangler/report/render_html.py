"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no external assets.

Saved, it works offline: an example's order id links to its story only when a base URL
(the sidecar's) is given, as an absolute link; otherwise it is plain text.
"""

from __future__ import annotations

from html import escape

from strangler.report.charts import mismatch_chart, rollout_chart, time_chart
from strangler.report.report import Report, story_url
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

__all__ = ["render_html", "table_html"]

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .7em; text-align: left; }
th { background: #f4f4f4; }
.pass { color: #11692b; } .hold { color: #8a5a00; } .fail { color: #b00020; }
.verdict { font-size: 1.6em; font-weight: bold; }
.headline p { font-size: 1.2em; margin: .3em 0; } .shift { font-weight: bold; background: #fff3c4; }
figure { margin: 0 0 1.5em; } figcaption { color: #555; }
"""


def render_html(
    report: Report,
    step: Report | None = None,
    step_note: str = "",
    base_url: str | None = None,
) -> str:
    """The whole report as an HTML document (UTF-8 text).

    ``step``: the report of the gate's current step, shown first (None: unknown,
    ``step_note`` says why); ``base_url``: the sidecar's URL for absolute story links.
    """
    body = "\n".join(
        (
            _header(report),
            _headline(report, step, step_note),
            _verdict(report),
            _paths(report),
            _figure(time_chart(report), "Time from notification to terminal, per path"),
            _shadow(report, base_url),
            _figure(
                mismatch_chart(report),
                "Cumulative shadow mismatch rate per step with its 95 % band; dashed: the "
                "threshold; dotted: the noise baseline (repeatability)",
            ),
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


def table_html(table: Table) -> str:
    """``table`` as an HTML table, every cell escaped; a marked cell has class ``shift``."""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='shift'>{escape(cell)}</td>"
            if (r, c) in table.marked
            else f"<td>{escape(cell)}</td>"
            for c, cell in enumerate(row)
        )
        + "</tr>"
        for r, row in enumerate(table.rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _shown(table: Table) -> str:
    return table_html(table) if table.rows else ""


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _header(report: Report) -> str:
    return f"<h1>{escape(REPORT_TITLE)}</h1>" + "".join(
        f"<p>{escape(line)}</p>" for line in header_lines(report)
    )


def _headline(report: Report, step: Report | None, step_note: str) -> str:
    lines = "".join(f"<p>{escape(line)}</p>" for line in headline(report, step, step_note))
    html = f"<div class='headline'>{lines}</div>"
    if step is not None:
        html += f"<h2>{escape(STEP_TITLE)}</h2>" + _shown(check_table(step.verdict.checks))
    return html


def _verdict(report: Report) -> str:
    status = report.verdict.status
    return (
        f"<h2>{escape(VERDICT_TITLE)}</h2><p class='verdict {status}'>"
        f"{status.upper()}</p>" + _shown(check_table(report.verdict.checks))
    )


def _paths(report: Report) -> str:
    html = f"<h2>{escape(PATH_TITLE)}</h2>" + _shown(path_table(report))
    if (causes := handoff_table(report)).rows:
        html += f"<h3>{escape(HANDOFF_TITLE)}</h3>" + table_html(causes)
    return html


def _story(order_id: str, base_url: str | None) -> str:
    if base_url is None:
        return escape(order_id)
    return f"<a href='{escape(base_url.rstrip('/') + story_url(order_id))}'>{escape(order_id)}</a>"


def _shadow(report: Report, base_url: str | None) -> str:
    shadow = report.shadow
    html = f"<h2>{escape(SHADOW_TITLE)}</h2><p>{escape(shadow_summary(report))}</p>"
    html += _shown(shadow_table(report))
    if shadow.examples:
        items = "".join(
            f"<li>{_story(e.order_id, base_url)}: "
            + escape("; ".join(f"{k}: {v}" for k, v in e.steps.items()))
            + f"<br><small>instant: {escape(str(dict(e.candidate)))}<br>"
            f"legacy: {escape(str(dict(e.baseline)))}</small></li>"
            for e in shadow.examples
        )
        html += f"<h3>Example mismatches</h3><ul>{items}</ul>"
    return html


def _arms(report: Report) -> str:
    return (
        f"<h2>{escape(AB_TITLE)}</h2><p>{escape(ab_summary(report))} Highlighted: a difference "
        "whose 95 % interval excludes 0.</p>" + table_html(ab_table(report))
    )


def _rollout(report: Report) -> str:
    if not report.rollout:
        return f"<h2>{escape(ROLLOUT_TITLE)}</h2><p>No changes recorded.</p>"
    return f"<h2>{escape(ROLLOUT_TITLE)}</h2>" + table_html(rollout_table(report))
