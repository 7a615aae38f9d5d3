"""Deterministic synthetic order traffic for the demo, tests and benchmarks.

The mix exercises every business outcome of the legacy rules (docs/legacy.md): most
orders are fulfilled, a few are rejected for fraud (token prefix ``fraud_`` or an amount
over the limit) and a few are declined (token prefix ``decline_``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from strangler.sim.rules import DEFAULT_FRAUD_LIMIT_CENTS

__all__ = ["CITIES", "TrafficMix", "synthetic_orders"]

CITIES = (
    "new-york",
    "boston",
    "chicago",
    "los-angeles",
    "san-francisco",
    "seattle",
    "miami",
    "atlanta",
    "dallas",
    "houston",
    "denver",
    "philadelphia",
    "washington-dc",
)
OVER_FRAUD_LIMIT_CENTS = DEFAULT_FRAUD_LIMIT_CENTS + 50_000


@dataclass(frozen=True, slots=True)
class TrafficMix:
    """Shares of orders that should end rejected for fraud or declined."""

    fraud_token: float = 0.03
    fraud_amount: float = 0.01
    declined: float = 0.04
    users: int = 5_000


def synthetic_orders(
    count: int, *, seed: int = 7, prefix: str = "demo", mix: TrafficMix | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` order-creation bodies, the same ones for the same seed and prefix.

    Order ids are ``<prefix>-<seed>-<n>``; user_guids repeat across orders, as real
    customers do, so flag stickiness is exercised.
    """
    mix = mix or TrafficMix()
    rng = random.Random(seed)
    for n in range(count):
        roll = rng.random()
        token = f"tok_{rng.getrandbits(40):010x}"
        amount = rng.randrange(1_000, 30_000, 100)
        if roll < mix.fraud_token:
            token = "fraud_" + token
        elif roll < mix.fraud_token + mix.fraud_amount:
            amount = OVER_FRAUD_LIMIT_CENTS
        elif roll < mix.fraud_token + mix.fraud_amount + mix.declined:
            token = "decline_" + token
        yield {
            "order_id": f"{prefix}-{seed}-{n:06d}",
            "user_guid": f"user-{rng.randrange(mix.users):05d}",
            "unit_id": f"unit-{rng.randrange(400):04d}",
            "city": rng.choice(CITIES),
            "amount_cents": amount,
            "currency": "USD",
            "quantity": rng.choice((1, 1, 1, 2, 3)),
            "payment_token": token,
        }
