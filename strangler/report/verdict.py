"""The verdict: a report's figures judged against thresholds, pass / hold / fail with reasons.

Pure, no IO. :func:`judge` takes the figures it reads, not a report: the report is built
once, after judging, with its verdict. :class:`StepFigures` and :class:`ArmFigures` say
what it reads of a step's mismatch and of an A/B difference (``report.StepMismatch`` and
``report.ArmDifference`` fit them). The rules (docs/reports.md, "The gate's rules"):

- ``orders``: fewer than ``min_orders`` orders on the new side (instant + shadow paths)
  holds: not enough data.
- ``mismatch:<step>`` (one per compared step), against ``max_mismatch``. The noise baseline
  is repeatability: how often the same side disagrees with itself when the same order is
  judged again. Its rate is subtracted only when it can vouch for itself: at least
  ``min_noise`` orders and its own upper bound at or below ``max_mismatch``.

  - the shadow rate's Wilson interval lies at or below the threshold: pass;
  - the noise baseline disagrees with itself and its upper bound lies above the threshold:
    fail, "the comparison cannot vouch";
  - noise usable: the excess (shadow minus noise, Newcombe 95 % interval) above the
    threshold fails, at or below passes, straddling holds;
  - noise unusable (too small, or not precise enough): it excuses nothing; the shadow rate
    alone above the threshold fails, straddling holds.

  No compared shadow orders at all: hold, "no comparisons yet" (``require_shadow``, the
  default); pass only when ``require_shadow`` is off.
- ``error_rate``: instant orders that fell back or ended ``failed``, each order once, over
  instant orders; above ``max_error_rate`` fails, at or below passes, straddling holds. No
  instant orders: pass.
- ``ab:<metric>`` (fraud_reject, decline, failure, fallback): instant minus legacy outcome
  rates; a difference whose 95 % interval lies entirely beyond ``ab_tolerance`` fails
  (fraud_reject and decline in either direction, failure and fallback when instant is
  worse). An empty arm, or one below ``min_ab_orders`` (100): pass, n/a.
- ``p99``: only with ``max_p99_s``; the instant path's p99 time to terminal above it fails.

Each rate check also says how many compared orders it has and how many it needs at the
observed rate for its interval to clear the threshold (``compared`` of ``needed``).
The overall status is ``fail`` if any check fails, else ``hold`` if any holds, else ``pass``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from strangler.report.stats import (
    Interval,
    format_rate,
    orders_needed,
    percent,
    two_proportion_difference,
    wilson_interval,
)

__all__ = [
    "NOISE_SIDE",
    "ArmFigures",
    "Check",
    "Status",
    "StepFigures",
    "Thresholds",
    "Verdict",
    "judge",
]

Status = Literal["pass", "hold", "fail"]

#: The side the noise probe judges twice (strangler.background.noise).
NOISE_SIDE = "the per-order API"
# A/B metrics where a change in either direction is a behaviour change customers receive.
_TWO_SIDED = frozenset({"fraud_reject", "decline"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the verdict judges against; rates are fractions (0.005 is 0.5 %).

    ``min_noise``: the noise sample size below which the baseline excuses nothing.
    ``ab_tolerance``: how far an A/B outcome rate may move (0.01 = 1 point).
    ``min_ab_orders``: the orders each A/B arm needs before a difference can fail (fewer
    make a 95 % interval that lies beyond the tolerance by chance on a clean rollout).
    ``require_shadow``: hold, rather than pass, when nothing was compared.
    Raises ValueError for a negative count or a rate outside [0, 1].
    """

    min_orders: int = 200
    max_mismatch: float = 0.005
    max_error_rate: float = 0.01
    max_p99_s: float | None = None
    require_shadow: bool = True
    min_noise: int = 200
    ab_tolerance: float = 0.01
    min_ab_orders: int = 100

    def __post_init__(self) -> None:
        for name in ("min_orders", "min_noise", "min_ab_orders"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_mismatch", "max_error_rate", "ab_tolerance"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a fraction in [0, 1] (0.005 = 0.5 %), got {value!r}")
        if self.max_p99_s is not None and self.max_p99_s <= 0:
            raise ValueError(f"max_p99_s must be > 0 seconds, got {self.max_p99_s!r}")


@dataclass(frozen=True, slots=True)
class Check:
    """One check's status and why; ``observed`` and ``threshold`` as the reason quotes them.

    ``compared`` is the sample the check judged and ``needed`` the sample its interval
    needs, at the observed rate, to clear the threshold (None: not a rate check, or no
    sample size will do).
    """

    name: str
    status: Status
    reason: str
    observed: float | None = None
    threshold: float | None = None
    compared: int | None = None
    needed: int | None = None


_CheckMaker = Callable[[Status, str], Check]


class StepFigures(Protocol):
    """One compared step: its shadow mismatch rate and its noise baseline."""

    @property
    def step(self) -> str:
        """The step's name (``fraud_scan``, ..., ``outcome``)."""

    @property
    def shadow(self) -> Interval:
        """Shadow orders whose sides differed at this step, over compared shadow orders."""

    @property
    def noise(self) -> Interval:
        """Noise-probe orders whose side differed from itself, over probed orders."""


class ArmFigures(Protocol):
    """One A/B metric: ``instant.rate - legacy.rate`` with its 95 % interval."""

    @property
    def instant(self) -> Interval:
        """The metric's rate on the instant arm."""

    @property
    def legacy(self) -> Interval:
        """The metric's rate on the legacy arm."""

    @property
    def difference(self) -> float:
        """Instant rate minus legacy rate."""

    @property
    def low(self) -> float:
        """The difference's lower 95 % bound."""

    @property
    def high(self) -> float:
        """The difference's upper 95 % bound."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall status and every check that led to it."""

    status: Status
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """``name: reason`` of every check that did not pass."""
        return tuple(f"{c.name}: {c.reason}" for c in self.checks if c.status != "pass")


def judge(
    thresholds: Thresholds,
    *,
    instant_orders: int,
    shadow_orders: int,
    instant_failed_or_fell_back: int,
    instant_p99_s: float | None,
    steps: Sequence[StepFigures],
    ab: Mapping[str, ArmFigures],
) -> Verdict:
    """Judge a window's figures against ``thresholds``: the report's verdict.

    ``instant_orders`` and ``shadow_orders``: orders routed to each path in the window;
    ``instant_failed_or_fell_back``: instant orders that fell back or ended ``failed``,
    each once; ``instant_p99_s``: the instant path's p99 seconds to terminal (None: no
    terminal order); ``steps``: the mismatch of each compared step, in report order;
    ``ab``: each A/B metric's difference, in report order.
    """
    checks = (
        _orders_check(instant_orders + shadow_orders, thresholds),
        *_mismatch_checks(steps, thresholds),
        _error_rate_check(instant_failed_or_fell_back, instant_orders, thresholds),
        *_ab_checks(ab, thresholds),
        *_p99_checks(instant_p99_s, thresholds),
    )
    return Verdict(status=_overall(checks), checks=checks)


def _overall(checks: tuple[Check, ...]) -> Status:
    statuses = {check.status for check in checks}
    if "fail" in statuses:
        return "fail"
    return "hold" if "hold" in statuses else "pass"


def _progress(compared: int, needed: int | None) -> str:
    if needed is None:
        return f"{compared} compared; no sample size settles it at this rate"
    return f"{compared} of {needed} compared orders needed"


def _orders_check(orders: int, t: Thresholds) -> Check:
    status: Status = "pass" if orders >= t.min_orders else "hold"
    relation = ">=" if status == "pass" else "<"
    return Check(
        name="orders",
        status=status,
        reason=f"{orders} instant+shadow orders {relation} min_orders {t.min_orders}",
        observed=float(orders),
        threshold=float(t.min_orders),
        compared=orders,
        needed=t.min_orders,
    )


def _mismatch_checks(steps: Sequence[StepFigures], t: Thresholds) -> tuple[Check, ...]:
    compared = [step for step in steps if step.shadow.total > 0]
    if compared:
        return tuple(_mismatch_check(step, t) for step in compared)
    needed = orders_needed(0.0, t.max_mismatch)
    if not t.require_shadow:
        reason = "no compared shadow orders in the window (comparisons not required)"
        return (Check(name="mismatch", status="pass", reason=reason, compared=0, needed=needed),)
    return (
        Check(
            name="mismatch",
            status="hold",
            reason=f"no comparisons yet: {_progress(0, needed)} per step",
            threshold=t.max_mismatch,
            compared=0,
            needed=needed,
        ),
    )


def _mismatch_check(step: StepFigures, t: Thresholds) -> Check:
    shadow, noise, limit = step.shadow, step.noise, t.max_mismatch
    needed = orders_needed(shadow.rate, limit)

    def check(status: Status, reason: str) -> Check:
        return Check(
            name=f"mismatch:{step.step}",
            status=status,
            reason=reason,
            observed=shadow.rate,
            threshold=limit,
            compared=shadow.total,
            needed=needed,
        )

    shown = format_rate(shadow)
    if shadow.high <= limit:
        return check("pass", f"{shown} lies at or below {percent(limit)}")
    sized = noise.total >= t.min_noise
    if sized and noise.successes > 0 and noise.high > limit:
        return check(
            "fail",
            f"the comparison cannot vouch: {NOISE_SIDE} disagrees with itself at "
            f"{format_rate(noise)}, above {percent(limit)} (shadow {shown})",
        )
    if sized and noise.high <= limit:
        return _excess_check(check, shadow, noise, limit, _progress(shadow.total, needed))
    excuse = _no_excuse(noise, t)
    if shadow.low > limit:
        return check("fail", f"{shown} lies above {percent(limit)}; {excuse}")
    return check(
        "hold",
        f"{shown} straddles {percent(limit)}: inconclusive, {_progress(shadow.total, needed)}",
    )


def _no_excuse(noise: Interval, t: Thresholds) -> str:
    """Why a noise baseline excuses nothing: too small, absent, or not precise enough."""
    if not noise.total:
        return "there is no noise sample: nothing is excused"
    if noise.total < t.min_noise:
        return (
            f"the noise sample {noise.total} is below the minimum {t.min_noise} and excuses nothing"
        )
    above = percent(t.max_mismatch)
    return f"the noise baseline {format_rate(noise)} reaches above {above} and excuses nothing"


def _excess_check(
    check: _CheckMaker, shadow: Interval, noise: Interval, limit: float, progress: str
) -> Check:
    excess = two_proportion_difference(shadow, noise)
    shown = (
        f"{format_rate(shadow)} less noise {format_rate(noise)}: excess "
        f"{percent(excess.difference)} [{percent(excess.low)}, {percent(excess.high)}]"
    )
    if excess.low > limit:
        return check("fail", f"{shown} lies above {percent(limit)}")
    if excess.high <= limit:
        return check("pass", f"{shown} lies at or below {percent(limit)}")
    return check("hold", f"{shown} straddles {percent(limit)}: inconclusive, {progress}")


def _error_rate_check(errored: int, orders: int, t: Thresholds) -> Check:
    if orders == 0:
        return Check(name="error_rate", status="pass", reason="no instant orders in the window")
    rate = wilson_interval(errored, orders)
    limit = t.max_error_rate
    needed = orders_needed(rate.rate, limit)
    shown = f"{format_rate(rate)} instant orders fell back or failed"
    if rate.high <= limit:
        status: Status = "pass"
        reason = f"{shown}, at or below {percent(limit)}"
    elif rate.low > limit:
        status = "fail"
        reason = f"{shown}, above {percent(limit)}"
    else:
        status = "hold"
        reason = (
            f"{shown}, straddles {percent(limit)}: inconclusive, {_progress(rate.total, needed)}"
        )
    return Check(
        name="error_rate",
        status=status,
        reason=reason,
        observed=rate.rate,
        threshold=limit,
        compared=rate.total,
        needed=needed,
    )


def _ab_checks(ab: Mapping[str, ArmFigures], t: Thresholds) -> tuple[Check, ...]:
    return tuple(_ab_check(metric, found, t) for metric, found in ab.items())


def _points(value: float) -> str:
    return f"{value * 100:+.2f} pts"


def _ab_check(metric: str, found: ArmFigures, t: Thresholds) -> Check:
    name = f"ab:{metric}"
    tolerance = t.ab_tolerance
    arms = (("instant", found.instant), ("legacy", found.legacy))
    empty = [arm for arm, rate in arms if not rate.total]
    if empty:
        return Check(name=name, status="pass", reason=f"n/a (no {' or '.join(empty)} orders)")
    small = [f"{arm} {rate.total}" for arm, rate in arms if rate.total < t.min_ab_orders]
    if small:
        return Check(
            name=name,
            status="pass",
            reason=f"n/a (too few orders to judge: {', '.join(small)} of "
            f"{t.min_ab_orders} needed per arm)",
            compared=min(found.instant.total, found.legacy.total),
            needed=t.min_ab_orders,
        )
    shown = (
        f"instant {percent(found.instant.rate)} vs legacy {percent(found.legacy.rate)}: "
        f"{_points(found.difference)} [{_points(found.low)}, {_points(found.high)}]"
    )
    worse = found.low > tolerance
    better = metric in _TWO_SIDED and found.high < -tolerance
    status: Status = "fail" if worse or better else "pass"
    where = "lies beyond" if status == "fail" else "does not lie beyond"
    return Check(
        name=name,
        status=status,
        reason=f"{shown} {where} the tolerance of {tolerance * 100:.2f} pts",
        observed=found.difference,
        threshold=tolerance,
    )


def _p99_checks(p99: float | None, t: Thresholds) -> tuple[Check, ...]:
    if t.max_p99_s is None:
        return ()
    if p99 is None:
        return (Check(name="p99", status="pass", reason="no terminal instant orders"),)
    status: Status = "fail" if p99 > t.max_p99_s else "pass"
    relation = ">" if status == "fail" else "<="
    return (
        Check(
            name="p99",
            status=status,
            reason=f"instant p99 {p99:.3f} s {relation} {t.max_p99_s:g} s",
            observed=p99,
            threshold=t.max_p99_s,
        ),
    )
