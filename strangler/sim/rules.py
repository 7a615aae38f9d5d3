"""The legacy app's business rules: deterministic, pure, documented in docs/legacy.md.

- fraud scan, in this order: ``user_guid`` on the blocklist -> reject ``blocked_user``;
  ``amount_cents`` over the limit (100000 by default) -> reject ``amount_over_limit``;
  ``payment_token`` starting ``fraud_`` -> reject ``fraud_token``; else ``pass``.
- payment: a token starting ``decline_`` -> ``declined`` (``card_declined``); a token
  starting ``error_`` -> the gateway errs every time (GatewayError, retried until the
  order fails); anything else, a missing token included (a card on file) -> ``authorized``.
- fulfilment: one voucher code per unit of ``quantity`` (1 when absent), derived from the
  order id and the unit's index, so the same order always gets the same codes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from strangler.sim.exceptions import GatewayError

__all__ = [
    "DEFAULT_FRAUD_LIMIT_CENTS",
    "OrderFacts",
    "Rules",
    "Verdict",
    "authorize_payment",
    "fraud_scan",
    "fulfill",
    "voucher_codes",
]

DEFAULT_FRAUD_LIMIT_CENTS = 100_000


@dataclass(frozen=True, slots=True)
class Rules:
    """The tunable parts of the rules; ``max_attempts`` failed batch attempts fail an order."""

    fraud_limit_cents: int = DEFAULT_FRAUD_LIMIT_CENTS
    blocked_users: frozenset[str] = field(default_factory=frozenset)
    max_attempts: int = 3
    # Share of orders per step for which the per-order API decides differently
    # (strangler.sim.divergence); the batch jobs never diverge.
    api_divergence: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.fraud_limit_cents < 0:
            raise ValueError(f"fraud_limit_cents must be 0 or more, got {self.fraud_limit_cents}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for step, share in self.api_divergence.items():
            if step not in ("fraud_scan", "authorize_payment", "fulfill") or not 0 <= share <= 1:
                raise ValueError(
                    f"api_divergence needs a step of the three and a share in [0, 1], "
                    f"got {step}={share}"
                )


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the rules look at."""

    order_id: str
    user_guid: str
    amount_cents: int | None
    quantity: int | None
    payment_token: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A step's decision, why (for a reject or decline), and the vouchers of a fulfilment."""

    decision: str
    reason: str | None = None
    vouchers: tuple[str, ...] = ()

    def details(self) -> dict[str, object]:
        """The ``details`` object of a StepResult."""
        details: dict[str, object] = {}
        if self.reason is not None:
            details["reason"] = self.reason
        if self.vouchers:
            details["vouchers"] = list(self.vouchers)
        return details


def fraud_scan(order: OrderFacts, rules: Rules) -> Verdict:
    """``pass`` or ``reject`` with the first rule that matched."""
    if order.user_guid in rules.blocked_users:
        return Verdict("reject", "blocked_user")
    if (order.amount_cents or 0) > rules.fraud_limit_cents:
        return Verdict("reject", "amount_over_limit")
    if (order.payment_token or "").startswith("fraud_"):
        return Verdict("reject", "fraud_token")
    return Verdict("pass")


def authorize_payment(order: OrderFacts) -> Verdict:
    """``authorized`` or ``declined``; raises GatewayError for ``error_`` tokens."""
    token = order.payment_token or ""
    if token.startswith("error_"):
        raise GatewayError("payment gateway error: the gateway did not confirm the charge")
    if token.startswith("decline_"):
        return Verdict("declined", "card_declined")
    return Verdict("authorized")


def fulfill(order: OrderFacts) -> Verdict:
    """``fulfilled``, with one voucher code per unit."""
    return Verdict("fulfilled", vouchers=voucher_codes(order.order_id, order.quantity or 1))


def voucher_codes(order_id: str, quantity: int) -> tuple[str, ...]:
    """Stable codes like ``GC-7QH2-MX4A-K9ZD``: a hash of the order id and the unit index."""
    return tuple(_code(order_id, index) for index in range(quantity))


def _code(order_id: str, index: int) -> str:
    digest = hashlib.sha256(f"{order_id}:{index}".encode()).digest()
    text = base64.b32encode(digest).decode("ascii")[:12]
    return "GC-" + "-".join(text[i : i + 4] for i in range(0, 12, 4))
