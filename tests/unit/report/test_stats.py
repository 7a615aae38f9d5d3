"""Report maths against values published or computed by hand."""

from __future__ import annotations

import pytest

from strangler.report.stats import (
    nearest_rank,
    percentile,
    two_proportion_difference,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("fraction", "count", "rank"),
    [(0.5, 10, 5), (0.9, 10, 9), (0.99, 10, 10), (0.5, 1, 1), (0.99, 100, 99), (0.5, 3, 2)],
    ids=["p50-of-10", "p90-of-10", "p99-of-10", "one-value", "p99-of-100", "p50-of-3"],
)
def test_nearest_rank(fraction: float, count: int, rank: int) -> None:
    """The rank is the smallest r with r / count >= fraction."""
    assert nearest_rank(fraction, count) == rank


def test_percentile_picks_a_real_value_from_unsorted_input() -> None:
    """Percentiles pick one of the values, never an interpolation, whatever the input order."""
    values = [7.0, 1.0, 9.0, 3.0, 5.0]
    assert [percentile(values, f) for f in (0.5, 0.9, 1.0)] == [5.0, 9.0, 9.0]


@pytest.mark.parametrize(
    ("fraction", "count"), [(0.0, 5), (1.5, 5), (0.5, 0)], ids=["zero", "above-one", "empty"]
)
def test_nearest_rank_refuses_bad_input(fraction: float, count: int) -> None:
    """A fraction outside (0, 1] or an empty sample is a ValueError naming the problem."""
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank(fraction, count)


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998) table I
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (1, 29, 0.0061, 0.1718),  # Newcombe (1998) table I
    ],
    ids=["81-of-263", "none-of-10", "all-of-10", "1-of-29"],
)
def test_wilson_interval_matches_published_values(
    successes: int, total: int, low: float, high: float
) -> None:
    """The Wilson 95 % interval agrees with Newcombe's published figures to 4 places."""
    found = wilson_interval(successes, total)
    assert (round(found.low, 4), round(found.high, 4)) == (low, high)
    assert found.rate == successes / total


def test_wilson_interval_of_nothing_is_uninformative() -> None:
    """No observations: rate 0 and the interval [0, 1]."""
    found = wilson_interval(0, 0)
    assert (found.rate, found.low, found.high) == (0.0, 0.0, 1.0)


def test_wilson_interval_refuses_more_successes_than_total() -> None:
    """Impossible counts are a ValueError."""
    with pytest.raises(ValueError, match="successes <= total"):
        wilson_interval(3, 2)


@pytest.mark.parametrize(
    ("first", "second", "low", "high"),
    [
        ((56, 70), (48, 80), 0.0524, 0.3339),  # Newcombe (1998) method 10, example (a)
        ((9, 10), (3, 10), 0.1705, 0.8090),  # example (b)
        ((5, 56), (0, 29), -0.0381, 0.1926),  # example (d)
    ],
    ids=["56-70-vs-48-80", "9-10-vs-3-10", "5-56-vs-0-29"],
)
def test_two_proportion_difference_matches_newcombe(
    first: tuple[int, int], second: tuple[int, int], low: float, high: float
) -> None:
    """The hybrid-score interval of a difference agrees with Newcombe's examples."""
    found = two_proportion_difference(wilson_interval(*first), wilson_interval(*second))
    assert (round(found.low, 4), round(found.high, 4)) == (low, high)
    assert found.difference == pytest.approx(first[0] / first[1] - second[0] / second[1])
