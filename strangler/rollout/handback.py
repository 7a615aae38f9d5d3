"""Hand in-flight instant orders back to the batch jobs (``rollout kill --hand-back``).

A kill stops new orders going to the instant path; this moves the ones already on it
that have not passed payment: routed or running instant orders, not terminal, not handed
off, with no ``authorize_payment`` step recorded. Each is taken under the ledger's lease
first (a conditional UPDATE, so a dispatcher running the order right now keeps it; the
hand-back waits a bounded time for such leases to free), then its claim at the legacy
app is released, then the ledger records the hand-off (status ``fell_back``, handoff
``fallback``, the reason naming the kill) and the lease is given up as done. Every step
is idempotent: running it twice moves nothing twice. The ledger's side (which orders
may go back, their lease) is strangler.ledger.hand_back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from strangler.exceptions import StranglerError
from strangler.ledger import Handoff, SqlLedger, default_owner, utc_now
from strangler.legacy_adapter.exceptions import LegacyRejected
from strangler.protocols import LegacyPath

__all__ = ["HandBack", "hand_back_in_flight"]

_log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class HandBack:
    """What a hand-back did: the orders moved, and those it could not take or release."""

    moved: tuple[str, ...] = ()
    busy: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the terminal."""
        line = f"handed back to the batch jobs: {len(self.moved)} in-flight instant order(s)"
        if self.busy:
            line += f"; {len(self.busy)} still held by a worker (left to finish)"
        if self.failed:
            line += f"; {len(self.failed)} could not be released at the legacy app"
        return line


def hand_back_in_flight(
    ledger: SqlLedger,
    legacy: LegacyPath,
    *,
    reason: str,
    owner: str | None = None,
    wait_s: float = 5.0,
    lease_seconds: float = 30.0,
    clock: Callable[[], datetime] = utc_now,
) -> HandBack:
    """Hand every in-flight instant order that has not passed payment to the batch jobs.

    Orders leased by a running worker are retried until ``wait_s`` has passed, then left
    (counted as busy). Raises LedgerError when the ledger fails.
    """
    owner = owner or f"hand-back:{default_owner()}"
    moved: list[str] = []
    failed: dict[str, str] = {}
    deadline = time.monotonic() + wait_s
    busy = ledger.hand_back_candidates()
    while busy:
        waiting = []
        for order_id in busy:
            taken = ledger.lease_for_hand_back(
                order_id, owner, lease_seconds=lease_seconds, now=clock()
            )
            if not taken:
                if ledger.is_hand_back_candidate(order_id):
                    waiting.append(order_id)
                continue
            error = _hand_back_one(ledger, legacy, order_id, owner, reason)
            if error is None:
                moved.append(order_id)
            else:
                failed[order_id] = error
        busy = waiting
        if not busy or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return HandBack(tuple(moved), tuple(busy), failed)


def _hand_back_one(
    ledger: SqlLedger, legacy: LegacyPath, order_id: str, owner: str, reason: str
) -> str | None:
    """Release the claim and record the hand-off, under our lease; the error, if any."""
    why = f"rollout killed, handed back in flight: {reason}" if reason else "rollout killed"
    log = _log.bind(order_id=order_id)
    try:
        legacy.release(order_id, why)
    except LegacyRejected as exc:
        why = f"{why} (release refused: {exc})"
    except StranglerError as exc:
        ledger.release_lease(order_id, owner, done=False, error=f"hand-back failed: {exc}")
        log.error("hand_back_failed", error=str(exc))
        return str(exc)
    ledger.hand_off(order_id, Handoff.FALLBACK, reason=why)
    ledger.release_lease(order_id, owner, done=True)
    log.warning("order_handed_back", reason=why)
    return None
