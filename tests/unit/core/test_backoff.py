"""Backoff: the one exponential backoff every retry loop uses."""

from __future__ import annotations

import pytest

from strangler.backoff import Backoff


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    """Without jitter the delays are first_s, 2x, 4x ... and never above max_s."""
    backoff = Backoff(0.5, max_s=3.0)
    assert [backoff.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_zero_failures_waits_the_first_delay() -> None:
    """A caller counting from zero gets the first delay, not a fraction of it."""
    assert Backoff(1.0).delay_s(0) == 1.0


def test_jitter_stays_within_its_bounds() -> None:
    """Each jittered delay lies within base * (low, high), and they are not all equal."""
    backoff = Backoff(2.0, jitter=(0.5, 1.0))
    delays = [backoff.delay_s(2) for _ in range(200)]
    assert (min(delays) >= 2.0, max(delays) <= 4.0, len(set(delays)) > 1) == (True, True, True)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        pytest.param({"first_s": -1.0}, "0 or more", id="negative-first"),
        pytest.param({"first_s": 1.0, "max_s": -1.0}, "0 or more", id="negative-max"),
        pytest.param({"first_s": 1.0, "jitter": (1.5, 1.0)}, "low <= high", id="jitter-order"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], problem: str) -> None:
    """Negative delays and an inverted jitter range raise a ValueError naming the problem."""
    with pytest.raises(ValueError, match=problem):
        Backoff(**options)  # type: ignore[arg-type]
