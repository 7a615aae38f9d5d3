"""Errors of the ledger's leases (storage failures are strangler.exceptions.LedgerError)."""

from __future__ import annotations

from strangler.exceptions import LedgerError

__all__ = ["LeaseLost"]


class LeaseLost(LedgerError):
    """Another worker took over an order this worker was processing (its lease expired)."""

    def __init__(self, order_id: str, owner: str) -> None:
        self.order_id = order_id
        self.owner = owner
        super().__init__(
            f"lease on order {order_id!r} held by {owner!r} was lost; another worker has it "
            "now (raise lease_seconds if processing an order takes longer than the lease)"
        )
