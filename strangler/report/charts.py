"""The report's charts, drawn with matplotlib as inline SVG text.

Figures are built with the object API (``matplotlib.figure.Figure``), never pyplot: no GUI
backend is loaded, no global figure state is kept, and rendering is safe in a server
thread. Each function returns an ``<svg>`` element ready to paste into HTML.
"""

from __future__ import annotations

import io
import re
from datetime import datetime

from matplotlib import rc_context
from matplotlib.figure import Figure

from strangler.report.report import Report
from strangler.report.stats import wilson_interval

__all__ = ["mismatch_chart", "rollout_chart", "time_chart"]

_SMALLEST_EDGE_S = 0.0005  # where the first histogram bin starts on a log axis
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    # Text as <text>, not glyph <use href="#..."> ids that would clash between the charts.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return _PREAMBLE.sub("", buffer.getvalue(), count=1)


def _figure() -> Figure:
    figure = Figure(figsize=(8, 3.2), dpi=96, layout="constrained")
    return figure


def time_chart(report: Report) -> str:
    """Share of terminal orders per time-to-terminal bin, one line per path, log x axis."""
    figure = _figure()
    axes = figure.add_subplot()
    for path in report.paths:
        if not path.histogram or path.times.count == 0:
            continue
        edges = [max(b.low_s, _SMALLEST_EDGE_S) for b in path.histogram]
        last = path.histogram[-1].high_s
        edges.append(last if last != float("inf") else edges[-1] * 2)
        shares = [b.orders / path.times.count for b in path.histogram]
        # Bins come sparse (empty ones are not returned): draw each bin as its own step.
        for index, share in enumerate(shares):
            label = path.group if index == 0 else None
            color = f"C{[p.group for p in report.paths].index(path.group)}"
            axes.stairs([share], [edges[index], edges[index + 1]], color=color, label=label)
    axes.set_xscale("log")
    axes.set_xlabel("notification to terminal (seconds, log scale)")
    axes.set_ylabel("share of terminal orders")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    return _svg(figure)


def mismatch_chart(report: Report) -> str:
    """Cumulative shadow mismatch rate per step over time with its Wilson 95 % band.

    Each point counts every compared order up to the end of its bucket, so the band
    narrows as evidence grows; the threshold (dashed) and the highest per-step noise rate
    (dotted) are drawn as lines for scale.
    """
    figure = _figure()
    axes = figure.add_subplot()
    steps = sorted({point.step for point in report.shadow.over_time})
    for index, step in enumerate(steps):
        points = [p for p in report.shadow.over_time if p.step == step]
        ends, rates = [], []
        bad = total = 0
        for point in points:
            bad, total = bad + point.rate.successes, total + point.rate.total
            if total:
                ends.append(_days(point.end))
                rates.append(wilson_interval(bad, total))
        color = f"C{index}"
        axes.plot(ends, [r.rate * 100 for r in rates], marker="o", color=color, label=step)
        axes.fill_between(
            ends,
            [r.low * 100 for r in rates],
            [r.high * 100 for r in rates],
            color=color,
            alpha=0.15,
        )
    threshold = report.thresholds.max_mismatch * 100
    axes.axhline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f} %")
    noise = max((s.noise.rate for s in report.shadow.steps if s.noise.total), default=None)
    if noise is not None:
        axes.axhline(noise * 100, color="0.4", linestyle=":", label=f"noise {noise * 100:.2f} %")
    axes.set_ylim(bottom=0)
    axes.xaxis_date()
    axes.set_ylabel("cumulative mismatch rate (%)")
    axes.set_xlabel("routed at (UTC)")
    axes.legend()
    figure.autofmt_xdate()
    return _svg(figure)


def rollout_chart(report: Report) -> str:
    """The share of orders on instant and on shadow over the window, a step at each change.

    A kill drops both to 0; a shadow-first step moves the instant share, not the rollout.
    """
    figure = _figure()
    axes = figure.add_subplot()
    events = report.rollout
    if events:
        start = report.window.effective_since
        # The change before the window only says which level the window starts at.
        times = [_days(max(e.at, start) if start else e.at) for e in events]
        times.append(_days(report.window.until))
        shares = [event.shares for event in events]
        shares.append(shares[-1])
        axes.step(times, [s[0] for s in shares], where="post", color="C0", label="instant")
        axes.step(times, [s[1] for s in shares], where="post", color="C1", label="shadow")
        axes.legend(loc="upper left")
    axes.xaxis_date()
    axes.set_ylim(0, 105)
    axes.set_ylabel("share of orders (%)")
    axes.set_xlabel("time (UTC)")
    figure.autofmt_xdate()
    return _svg(figure)


def _days(when: datetime) -> float:
    """Matplotlib's date number: days since its default epoch, 1970-01-01 UTC."""
    return when.timestamp() / 86_400


def _middle(start: datetime, end: datetime) -> datetime:
    return start + (end - start) / 2
