"""Report maths: percentiles, Wilson 95 % intervals, two-proportion differences, sample sizes.

Pure functions, no IO. Rates are fractions in [0, 1]; ``Z95`` is the two-sided 95 % normal
quantile. The SQL in :mod:`strangler.ledger.report_queries` picks percentiles with
:func:`nearest_rank`, so a percentile here and one from the ledger agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Z95",
    "Difference",
    "Interval",
    "format_rate",
    "nearest_rank",
    "orders_needed",
    "percent",
    "percentile",
    "two_proportion_difference",
    "wilson_interval",
]

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Interval:
    """A proportion ``successes / total`` with its Wilson 95 % interval ``[low, high]``.

    An empty sample (``total == 0``) has rate 0 and the uninformative interval [0, 1].
    """

    successes: int
    total: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Difference:
    """``first.rate - second.rate`` with its Newcombe (hybrid Wilson score) 95 % interval."""

    first: Interval
    second: Interval
    difference: float
    low: float
    high: float


def nearest_rank(fraction: float, count: int) -> int:
    """The 1-based rank of the ``fraction`` percentile among ``count`` sorted values.

    Nearest-rank definition: the smallest rank r with r / count >= fraction, at least 1.
    Raises ValueError for a fraction outside (0, 1] or a count below 1.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"percentile fraction must be in (0, 1], got {fraction!r}")
    if count < 1:
        raise ValueError(f"a percentile needs at least one value, got count={count!r}")
    # Round first so that 0.9 * 10 (9.000000000000002 in binary) is rank 9, not 10.
    return max(1, math.ceil(round(fraction * count, 9)))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank ``fraction`` percentile of ``values`` (need not be sorted)."""
    ordered = sorted(values)
    return ordered[nearest_rank(fraction, len(ordered)) - 1]


def wilson_interval(successes: int, total: int, z: float = Z95) -> Interval:
    """The Wilson score interval for ``successes`` out of ``total``.

    Raises ValueError when the counts are negative or ``successes > total``.
    """
    if total < 0 or not 0 <= successes <= max(total, 0):
        raise ValueError(f"need 0 <= successes <= total, got {successes!r} of {total!r}")
    if total == 0:
        return Interval(successes=0, total=0, rate=0.0, low=0.0, high=1.0)
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return Interval(successes=successes, total=total, rate=p, low=low, high=high)


def two_proportion_difference(first: Interval, second: Interval) -> Difference:
    """The difference of two independent proportions with Newcombe's 95 % interval.

    Newcombe (1998), method 10: combines each side's Wilson interval, so it behaves at
    rates near 0 and 1 where the Wald interval collapses.
    """
    diff = first.rate - second.rate
    low = diff - math.sqrt((first.rate - first.low) ** 2 + (second.high - second.rate) ** 2)
    high = diff + math.sqrt((first.high - first.rate) ** 2 + (second.rate - second.low) ** 2)
    return Difference(
        first=first, second=second, difference=diff, low=max(-1.0, low), high=min(1.0, high)
    )


_MAX_NEEDED = 10**8


def _wilson_bounds(rate: float, total: int, z: float) -> tuple[float, float]:
    z2 = z * z
    centre = (rate + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(rate * (1 - rate) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return centre - half, centre + half


def _decisive(rate: float, total: int, limit: float, z: float) -> bool:
    low, high = _wilson_bounds(rate, total, z)
    return high <= limit if rate < limit else low > limit


def orders_needed(rate: float, limit: float, z: float = Z95) -> int | None:
    """How many orders a sample at ``rate`` needs for its Wilson interval to clear ``limit``.

    Cleared means the interval lies entirely at or below ``limit`` (``rate < limit``) or
    entirely above it (``rate > limit``). None when no sample size will do: ``rate`` equals
    ``limit``, or it would take more than 10**8 orders. A rate of 0 against 0.5 % needs 765.
    """
    if not (0.0 <= rate <= 1.0 and 0.0 <= limit <= 1.0):
        raise ValueError(f"rate and limit are fractions in [0, 1], got {rate!r} and {limit!r}")
    if rate == limit or not _decisive(rate, _MAX_NEEDED, limit, z):
        return None
    low, high = 0, 1
    while not _decisive(rate, high, limit, z):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if _decisive(rate, middle, limit, z):
            high = middle
        else:
            low = middle
    return high


def percent(fraction: float) -> str:
    """``0.2`` -> ``20.00 %``: the one way the report writes a rate."""
    return f"{fraction * 100:.2f} %"


def format_rate(rate: Interval) -> str:
    """``2/10 = 20.00 % [5.67 %, 50.98 %]``: the rate with its Wilson 95 % interval."""
    return (
        f"{rate.successes}/{rate.total} = {percent(rate.rate)} "
        f"[{percent(rate.low)}, {percent(rate.high)}]"
    )
