"""A rollout timeline that opens the ledger only when a change is recorded (the CLI's).

``strangler rollout show`` never needs the ledger, and a change needs it once, after the
flag changed: :class:`LedgerOnDemand` opens it then, records, and closes it. A ledger that
cannot be opened is a LedgerError like a failed write, so the controller's one rule
(:func:`strangler.rollout.controller.record_on_timeline`) covers both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from strangler.exceptions import ConfigurationError, LedgerError
from strangler.rollout.controller import RolloutChange

__all__ = ["ClosableTimeline", "LedgerOnDemand"]


class ClosableTimeline(Protocol):
    """An opened ledger, as far as recording one change goes (SqlLedger is one)."""

    def record_rollout_event(self, event: RolloutChange) -> object: ...

    def close(self) -> None: ...


class LedgerOnDemand:
    """A :class:`~strangler.rollout.controller.TimelineRecorder` opening the ledger per record."""

    def __init__(self, open_ledger: Callable[[], ClosableTimeline]) -> None:
        self._open = open_ledger

    def record_rollout_event(self, event: RolloutChange) -> object:
        """Open the ledger, record ``event``, close it; LedgerError when either step fails."""
        try:
            ledger = self._open()
        except ConfigurationError as exc:  # a bad ledger URL: the flag changed all the same
            raise LedgerError(f"the ledger could not be opened: {exc}") from exc
        try:
            return ledger.record_rollout_event(event)
        finally:
            ledger.close()
