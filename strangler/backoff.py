"""One exponential backoff for every retry loop in strangler.

A frozen value: ``first_s`` after the first failure, doubling after each further one, at
most ``max_s``, each delay multiplied by a uniform draw from ``jitter`` (``(1, 1)``: none).
The loops that use it (legacy calls, the Unleash Admin API, instant-path retries across
leases, the dispatcher's feeder, the role loop of the follower and retention) count their
own failures and bound their own attempts; this type only says how long to wait.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with optional jitter; delays in seconds."""

    first_s: float
    max_s: float = math.inf
    jitter: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        low, high = self.jitter
        if self.first_s < 0 or self.max_s < 0:
            raise ValueError(
                f"backoff delays must be 0 or more, got first_s={self.first_s} max_s={self.max_s}"
            )
        if not 0 <= low <= high:
            raise ValueError(f"jitter must be (low, high) with 0 <= low <= high, got {self.jitter}")

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row (1 for the first)."""
        base = min(self.max_s, self.first_s * 2.0 ** max(0, failures - 1))
        low, high = self.jitter
        return base if low == high else base * random.uniform(low, high)
