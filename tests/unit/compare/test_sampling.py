"""The noise sample: deterministic by order id, and of the configured size."""

from __future__ import annotations

import math

import pytest

from strangler.compare.sampling import in_sample, unit_interval

IDS = [f"ord-{n}" for n in range(10_000)]


def test_the_same_orders_are_always_sampled() -> None:
    """Asking again gives the same sample; a larger share keeps the smaller one's orders."""
    small = {order_id for order_id in IDS if in_sample(order_id, 0.05)}
    assert small == {order_id for order_id in IDS if in_sample(order_id, 0.05)}
    assert small <= {order_id for order_id in IDS if in_sample(order_id, 0.2)}


@pytest.mark.parametrize("share", [0.0, 0.05, 0.5, 1.0], ids=["none", "5pct", "half", "all"])
def test_the_sample_size(share: float) -> None:
    """Over 10,000 ids the sample lies within 4.5 binomial standard deviations of its share."""
    count = sum(in_sample(order_id, share) for order_id in IDS)
    spread = 4.5 * math.sqrt(len(IDS) * share * (1 - share))
    assert len(IDS) * share - spread <= count <= len(IDS) * share + spread


def test_values_lie_in_the_unit_interval() -> None:
    """The hash maps every key into [0, 1)."""
    values = [unit_interval(order_id) for order_id in IDS]
    assert 0.0 <= min(values) < 0.01
    assert 0.99 < max(values) < 1.0
