"""The verdict: a report judged against thresholds, pass / hold / fail with a reason per check.

Pure, no IO. The rules (docs/reports.md):

- ``orders``: fewer than ``min_orders`` orders on the new side (instant + shadow paths)
  holds: not enough data.
- ``mismatch:<step>`` (one per compared step): the shadow mismatch rate's Wilson 95 %
  interval lies entirely above ``max_mismatch`` and entirely above the noise baseline's
  interval: fail. Entirely at or below ``max_mismatch``: pass. Otherwise (it straddles the
  threshold, or overlaps the noise baseline): hold, inconclusive. No shadow comparisons at
  all: hold when ``require_shadow``, else pass (nothing to judge).
- ``error_rate``: instant orders that ended ``failed`` or fell back, over instant orders,
  judged like a mismatch (without a noise baseline). No instant orders: pass.
- ``p99``: only with ``max_p99_s``; the instant path's p99 time to terminal above it fails.

The overall status is ``fail`` if any check fails, else ``hold`` if any holds, else ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from strangler.compare.stats import Interval, wilson_interval

if TYPE_CHECKING:
    from strangler.compare.report import Report

__all__ = ["Check", "Status", "Thresholds", "Verdict", "judge"]

Status = Literal["pass", "hold", "fail"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the verdict judges against; rates are fractions (0.005 is 0.5 %).

    Raises ValueError for a negative count or a rate outside [0, 1].
    """

    min_orders: int = 200
    max_mismatch: float = 0.005
    max_error_rate: float = 0.01
    max_p99_s: float | None = None
    require_shadow: bool = False

    def __post_init__(self) -> None:
        if self.min_orders < 0:
            raise ValueError(f"min_orders must be >= 0, got {self.min_orders!r}")
        for name in ("max_mismatch", "max_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a fraction in [0, 1] (0.005 = 0.5 %), got {value!r}")
        if self.max_p99_s is not None and self.max_p99_s <= 0:
            raise ValueError(f"max_p99_s must be > 0 seconds, got {self.max_p99_s!r}")


@dataclass(frozen=True, slots=True)
class Check:
    """One check's status and why; ``observed`` and ``threshold`` as the reason quotes them."""

    name: str
    status: Status
    reason: str
    observed: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall status and every check that led to it."""

    status: Status
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """``name: reason`` of every check that did not pass."""
        return tuple(f"{c.name}: {c.reason}" for c in self.checks if c.status != "pass")


def judge(report: Report, thresholds: Thresholds) -> Verdict:
    """Judge ``report`` (its ``verdict`` field is ignored) against ``thresholds``."""
    checks = (
        _orders_check(report, thresholds),
        *_mismatch_checks(report, thresholds),
        _error_rate_check(report, thresholds),
        *_p99_checks(report, thresholds),
    )
    return Verdict(status=_overall(checks), checks=checks)


def _overall(checks: tuple[Check, ...]) -> Status:
    statuses = {check.status for check in checks}
    if "fail" in statuses:
        return "fail"
    return "hold" if "hold" in statuses else "pass"


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def _interval(rate: Interval) -> str:
    return (
        f"{rate.successes}/{rate.total} = {_pct(rate.rate)} [{_pct(rate.low)}, {_pct(rate.high)}]"
    )


def _orders_check(report: Report, t: Thresholds) -> Check:
    orders = report.path("instant").orders + report.path("shadow").orders
    status: Status = "pass" if orders >= t.min_orders else "hold"
    relation = ">=" if status == "pass" else "<"
    return Check(
        name="orders",
        status=status,
        reason=f"{orders} instant+shadow orders {relation} min_orders {t.min_orders}",
        observed=float(orders),
        threshold=float(t.min_orders),
    )


def _mismatch_checks(report: Report, t: Thresholds) -> tuple[Check, ...]:
    steps = [step for step in report.shadow.steps if step.shadow.total > 0]
    if not steps:
        status: Status = "hold" if t.require_shadow else "pass"
        need = "required" if t.require_shadow else "not required"
        reason = f"no compared shadow orders in the window (shadow {need})"
        return (Check(name="mismatch", status=status, reason=reason),)
    return tuple(
        _rate_check(f"mismatch:{step.step}", step.shadow, t.max_mismatch, step.noise)
        for step in steps
    )


def _error_rate_check(report: Report, t: Thresholds) -> Check:
    instant = report.path("instant")
    if instant.orders == 0:
        return Check(name="error_rate", status="pass", reason="no instant orders in the window")
    errors = instant.outcomes.get("failed", 0) + instant.fallbacks
    return _rate_check("error_rate", wilson_interval(errors, instant.orders), t.max_error_rate)


def _rate_check(name: str, rate: Interval, limit: float, noise: Interval | None = None) -> Check:
    shown = _interval(rate)
    above_noise = noise is None or noise.total == 0 or rate.low > noise.high
    if rate.high <= limit:
        status: Status = "pass"
        reason = f"{shown} lies at or below {_pct(limit)}"
    elif rate.low > limit and above_noise:
        status = "fail"
        reason = f"{shown} lies above {_pct(limit)}" + _noise_note(noise, above=True)
    elif rate.low > limit:
        status = "hold"
        reason = f"{shown} lies above {_pct(limit)}" + _noise_note(noise, above=False)
    else:
        status = "hold"
        reason = f"{shown} straddles {_pct(limit)}: inconclusive, more orders needed"
    return Check(name=name, status=status, reason=reason, observed=rate.rate, threshold=limit)


def _noise_note(noise: Interval | None, *, above: bool) -> str:
    if noise is None:
        return ""
    if noise.total == 0:
        return " (no noise baseline in the window)"
    where = "above" if above else "but overlaps"
    return f", {where} the noise baseline {_interval(noise)}"


def _p99_checks(report: Report, t: Thresholds) -> tuple[Check, ...]:
    if t.max_p99_s is None:
        return ()
    p99 = report.path("instant").times.p99
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
