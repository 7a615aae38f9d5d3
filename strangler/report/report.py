"""The comparison report: frozen dataclasses, built by pure functions from SQL aggregates.

Two layers. :class:`Aggregates` is what :mod:`strangler.ledger.report_queries` reads from
the ledger (counts and percentiles computed in SQL); :func:`build_report` turns it into a
:class:`Report` (rates, Wilson intervals, A/B differences, the verdict) with no IO.

Conventions every renderer and the rollout gate rely on:

- The window holds orders whose ``routed_at`` lies in ``[since, until)``; unrouted orders are
  not in any window. ``effective_since`` is ``since`` raised to the retention horizon
  (``kv['retention.horizon']``) when older orders were archived.
- Groups: ``legacy``, ``instant`` and ``shadow`` are the pinned paths of orders the intake
  saw; orders with source ``reconciled`` (adopted after a missed intake) form the group
  ``reconciled`` whatever their path.
- Times are seconds from ``received_at`` to ``terminal_at`` (notification to terminal),
  over terminal orders only; percentiles are nearest-rank (:func:`stats.nearest_rank`).
- Every rate carries its Wilson 95 % interval (:class:`stats.Interval`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strangler.report.stats import Interval, two_proportion_difference, wilson_interval
from strangler.report.verdict import Thresholds, Verdict, judge

__all__ = [
    "AB_METRICS",
    "GROUPS",
    "REPORT_SCHEMA_VERSION",
    "Aggregates",
    "ArmComparison",
    "ArmDifference",
    "Cause",
    "GroupAggregates",
    "HistogramBin",
    "MismatchExample",
    "MismatchPoint",
    "PathReport",
    "Report",
    "RolloutPoint",
    "ShadowAggregates",
    "ShadowReport",
    "StepMismatch",
    "TimeStats",
    "Window",
    "build_report",
    "public_cause",
    "story_url",
]

REPORT_SCHEMA_VERSION = 1
GROUPS = ("legacy", "instant", "shadow", "reconciled")
COMPARED_STEPS = ("fraud_scan", "authorize_payment", "fulfill", "outcome")
# A/B metrics: name -> how the SQL layer counts it (outcome value or the fallback hand-off).
AB_METRICS = ("fraud_reject", "decline", "failure", "fallback")


@dataclass(frozen=True, slots=True)
class Window:
    """The orders a report covers: ``routed_at`` in ``[effective_since, until)``."""

    since: datetime | None
    until: datetime
    retention_horizon: datetime | None
    effective_since: datetime | None
    basis: str = "routed_at"


@dataclass(frozen=True, slots=True)
class TimeStats:
    """Notification-to-terminal seconds over ``count`` terminal orders (None when 0)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class HistogramBin:
    """Terminal orders whose time to terminal lies in ``[low_s, high_s)``."""

    low_s: float
    high_s: float
    orders: int


@dataclass(frozen=True, slots=True)
class Cause:
    """Orders handed to the batch jobs (``handoff`` fallback|legacy_owned) for one cause."""

    handoff: str
    cause: str
    orders: int


@dataclass(frozen=True, slots=True)
class GroupAggregates:
    """What SQL counted for one group (see the module docstring for groups)."""

    orders: int
    terminal: int
    outcomes: Mapping[str, int]
    times: TimeStats
    histogram: tuple[HistogramBin, ...]
    handoffs: Mapping[str, int]
    causes: tuple[Cause, ...]
    errored_orders: int
    step_errors: Mapping[str, int]
    failed_or_fell_back: int


@dataclass(frozen=True, slots=True)
class MismatchExample:
    """One mismatched shadow order: both sides, what differs, and its story."""

    order_id: str
    routed_at: datetime
    steps: Mapping[str, str]
    candidate: Mapping[str, Any]
    baseline: Mapping[str, Any]
    story: str


@dataclass(frozen=True, slots=True)
class MismatchPoint:
    """Mismatches of one step among orders routed in ``[start, end)``."""

    step: str
    start: datetime
    end: datetime
    rate: Interval


@dataclass(frozen=True, slots=True)
class ShadowAggregates:
    """What SQL counted from ``comparisons`` / ``comparison_steps`` in the window.

    ``step_counts`` and ``noise_counts`` map step -> (mismatches, compared).
    """

    compared: int
    not_compared: Mapping[str, int]
    mismatched_orders: int
    step_counts: Mapping[str, tuple[int, int]]
    noise_compared: int
    noise_counts: Mapping[str, tuple[int, int]]
    over_time: tuple[tuple[str, datetime, datetime, int, int], ...]
    examples: tuple[MismatchExample, ...]


@dataclass(frozen=True, slots=True)
class RolloutPoint:
    """One change on the rollout timeline (``rollout_events``).

    ``kind``, ``enabled``, the weights (percent) and ``stage`` describe the flag after the
    change; None on events recorded before the ledger kept them.
    """

    at: datetime
    actor: str
    from_rollout: int | None
    to_rollout: int
    reason: str
    flag_revision: str
    kind: str | None = None
    enabled: bool | None = None
    instant_weight: float | None = None
    shadow_weight: float | None = None
    stage: str | None = None
    no_evidence: bool = False

    @property
    def shares(self) -> tuple[float, float]:
        """Percent of orders on (instant, shadow) after the change.

        An event from before the weights were recorded counts its rollout as instant.
        """
        if self.enabled is False:
            return (0.0, 0.0)
        if self.instant_weight is None or self.shadow_weight is None:
            return (float(self.to_rollout), 0.0)
        total = self.instant_weight + self.shadow_weight
        if total <= 0:
            return (0.0, 0.0)
        return (
            self.to_rollout * self.instant_weight / total,
            self.to_rollout * self.shadow_weight / total,
        )


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Everything the report needs, as counted by SQL; the input of :func:`build_report`."""

    generated_at: datetime
    window: Window
    groups: Mapping[str, GroupAggregates]
    shadow: ShadowAggregates
    rollout: tuple[RolloutPoint, ...]


@dataclass(frozen=True, slots=True)
class PathReport:
    """One group's figures: orders, outcome mix, times, hand-offs with causes, errors.

    ``failed_or_fell_back`` counts each order once: an order that fell back and then
    ended ``failed`` is one order, not two (the error rate's numerator).
    """

    group: str
    orders: int
    terminal: int
    in_flight: int
    outcomes: Mapping[str, int]
    times: TimeStats
    histogram: tuple[HistogramBin, ...]
    fallbacks: int
    legacy_owned: int
    causes: tuple[Cause, ...]
    errored_orders: int
    step_errors: Mapping[str, int]
    failed_or_fell_back: int


@dataclass(frozen=True, slots=True)
class StepMismatch:
    """Shadow mismatches of one step beside the noise baseline (a side against itself)."""

    step: str
    shadow: Interval
    noise: Interval


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """Shadow orders: compared, not compared with reasons, per-step mismatch, examples."""

    orders: int
    compared: int
    not_compared: int
    not_compared_reasons: Mapping[str, int]
    mismatched_orders: Interval
    steps: tuple[StepMismatch, ...]
    noise_compared: int
    over_time: tuple[MismatchPoint, ...]
    examples: tuple[MismatchExample, ...]


@dataclass(frozen=True, slots=True)
class ArmDifference:
    """``instant.rate - legacy.rate`` with its Newcombe 95 % interval ``[low, high]``."""

    instant: Interval
    legacy: Interval
    difference: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """Instant against legacy orders routed in the same window.

    ``differences`` maps each of :data:`AB_METRICS` to instant rate minus legacy rate:
    ``fallback`` over routed orders, the outcome rates over terminal orders.
    """

    instant_orders: int
    legacy_orders: int
    differences: Mapping[str, ArmDifference]
    instant_times: TimeStats
    legacy_times: TimeStats


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report; ``verdict`` is :func:`verdict.judge` of its figures."""

    schema_version: int
    generated_at: datetime
    window: Window
    paths: tuple[PathReport, ...]
    shadow: ShadowReport
    ab: ArmComparison
    rollout: tuple[RolloutPoint, ...]
    thresholds: Thresholds
    verdict: Verdict

    def path(self, group: str) -> PathReport:
        """The figures of ``group`` (one of :data:`GROUPS`); KeyError for another name."""
        return _path_named(self.paths, group)


# A file path of two or more segments, not part of a URL (nothing word-like right before).
_PATH = re.compile(r"""(?<![\w:/.])(?:[A-Za-z]:)?(?:[/\\][\w.@+-]+){2,}[/\\]?""")
_TRACEBACK = "Traceback (most recent call last)"
_CAUSE_CHARS = 200


def public_cause(text: str) -> str:
    """A cause fit for an open report: one line, no stack trace, no server file paths.

    A traceback is cut out, keeping what came before it and its last line (the error
    itself); file paths read ``<path>``; the line is cut to 200 characters.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "unrecorded"
    line = lines[0]
    if _TRACEBACK in text:
        head = text.split(_TRACEBACK, 1)[0].strip()
        line = f"{head} {lines[-1]}".strip() if lines[-1] != head else head
    line = re.sub(r'File "[^"]*", line \d+(, in \S+)?', "<path>", line)
    return _PATH.sub("<path>", line)[:_CAUSE_CHARS]


def _public_causes(causes: tuple[Cause, ...]) -> tuple[Cause, ...]:
    merged: Counter[tuple[str, str]] = Counter()
    for cause in causes:
        merged[cause.handoff, public_cause(cause.cause)] += cause.orders
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Cause(handoff, cause, orders) for (handoff, cause), orders in ordered)


def story_url(order_id: str) -> str:
    """The sidecar path of an order's story."""
    return f"/_strangler/orders/{order_id}"


def build_report(aggregates: Aggregates, thresholds: Thresholds | None = None) -> Report:
    """The report for ``aggregates`` judged against ``thresholds`` (defaults when None)."""
    thresholds = thresholds if thresholds is not None else Thresholds()
    paths = tuple(_path_report(group, aggregates.groups.get(group)) for group in GROUPS)
    instant = _path_named(paths, "instant")
    shadow = _shadow_report(aggregates.shadow, _path_named(paths, "shadow").orders)
    ab = _arms(paths)
    verdict = judge(
        thresholds,
        instant_orders=instant.orders,
        shadow_orders=shadow.orders,
        instant_failed_or_fell_back=instant.failed_or_fell_back,
        instant_p99_s=instant.times.p99,
        steps=shadow.steps,
        ab=ab.differences,
    )
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        generated_at=aggregates.generated_at,
        window=aggregates.window,
        paths=paths,
        shadow=shadow,
        ab=ab,
        rollout=aggregates.rollout,
        thresholds=thresholds,
        verdict=verdict,
    )


def _path_named(paths: tuple[PathReport, ...], group: str) -> PathReport:
    for item in paths:
        if item.group == group:
            return item
    raise KeyError(f"no group {group!r}; groups are {', '.join(GROUPS)}")


_EMPTY_GROUP = GroupAggregates(
    orders=0,
    terminal=0,
    outcomes={},
    times=TimeStats(count=0, p50=None, p90=None, p99=None, max=None),
    histogram=(),
    handoffs={},
    causes=(),
    errored_orders=0,
    step_errors={},
    failed_or_fell_back=0,
)


def _path_report(group: str, found: GroupAggregates | None) -> PathReport:
    agg = found if found is not None else _EMPTY_GROUP
    return PathReport(
        group=group,
        orders=agg.orders,
        terminal=agg.terminal,
        in_flight=agg.orders - agg.terminal,
        outcomes=dict(sorted(agg.outcomes.items())),
        times=agg.times,
        histogram=agg.histogram,
        fallbacks=agg.handoffs.get("fallback", 0),
        legacy_owned=agg.handoffs.get("legacy_owned", 0),
        causes=_public_causes(agg.causes),
        errored_orders=agg.errored_orders,
        step_errors=dict(sorted(agg.step_errors.items())),
        failed_or_fell_back=agg.failed_or_fell_back,
    )


def _step_order(step: str) -> tuple[int, str]:
    known = COMPARED_STEPS.index(step) if step in COMPARED_STEPS else len(COMPARED_STEPS)
    return (known, step)


def _shadow_report(agg: ShadowAggregates, orders: int) -> ShadowReport:
    steps = sorted(set(agg.step_counts) | set(agg.noise_counts), key=_step_order)
    return ShadowReport(
        orders=orders,
        compared=agg.compared,
        not_compared=sum(agg.not_compared.values()),
        not_compared_reasons=dict(sorted(agg.not_compared.items())),
        mismatched_orders=wilson_interval(agg.mismatched_orders, agg.compared),
        steps=tuple(
            StepMismatch(
                step=step,
                shadow=wilson_interval(*agg.step_counts.get(step, (0, 0))),
                noise=wilson_interval(*agg.noise_counts.get(step, (0, 0))),
            )
            for step in steps
        ),
        noise_compared=agg.noise_compared,
        over_time=tuple(
            MismatchPoint(step=step, start=start, end=end, rate=wilson_interval(bad, total))
            for step, start, end, bad, total in agg.over_time
        ),
        examples=agg.examples,
    )


def _arm_rate(path: PathReport, metric: str) -> Interval:
    """Fallbacks over routed orders; outcome rates over terminal orders."""
    if metric == "fallback":
        return wilson_interval(path.fallbacks, path.orders)
    outcome = {
        "fraud_reject": "rejected_fraud",
        "decline": "payment_declined",
        "failure": "failed",
    }[metric]
    return wilson_interval(path.outcomes.get(outcome, 0), path.terminal)


def _difference(instant: PathReport, legacy: PathReport, metric: str) -> ArmDifference:
    found = two_proportion_difference(_arm_rate(instant, metric), _arm_rate(legacy, metric))
    return ArmDifference(
        instant=found.first,
        legacy=found.second,
        difference=found.difference,
        low=found.low,
        high=found.high,
    )


def _arms(paths: tuple[PathReport, ...]) -> ArmComparison:
    instant, legacy = _path_named(paths, "instant"), _path_named(paths, "legacy")
    return ArmComparison(
        instant_orders=instant.orders,
        legacy_orders=legacy.orders,
        differences={metric: _difference(instant, legacy, metric) for metric in AB_METRICS},
        instant_times=instant.times,
        legacy_times=legacy.times,
    )
