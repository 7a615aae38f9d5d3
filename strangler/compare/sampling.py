"""Deterministic sampling by order id (pure): the same order is always in or out."""

from __future__ import annotations

import hashlib

__all__ = ["in_sample", "unit_interval"]


def unit_interval(key: str) -> float:
    """A number in [0, 1) derived from ``key`` by SHA-256: uniform and stable across runs."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(order_id: str, share: float, *, salt: str = "noise") -> bool:
    """True for about ``share`` of all order ids, always the same ones for one ``salt``."""
    return unit_interval(f"{salt}:{order_id}") < share
