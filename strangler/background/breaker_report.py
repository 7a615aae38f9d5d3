"""The legacy circuit breaker's state, kept in the ledger so that every process can show it.

The breaker lives in the process that calls the legacy app (the routing process or a
``strangler worker``), while ``/metrics`` is answered by the HTTP workers. Each change of
state is written to the ledger's kv table under :data:`BREAKER_KEY`, and the metrics read
it at scrape time, like the other ledger-wide figures. Where several processes share a
ledger, the last change written wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from strangler.exceptions import LedgerError
from strangler.ledger import utc_now
from strangler.legacy_adapter import BreakerState

__all__ = [
    "BREAKER_KEY",
    "BreakerRecorder",
    "BreakerReport",
    "KeyValues",
    "ValueReader",
    "read_breaker",
]

BREAKER_KEY = "legacy_breaker"

_log = structlog.get_logger()


class ValueReader(Protocol):
    """Reads the ledger's small persisted values (SqlLedger and the sidecar's seam do)."""

    def get_value(self, name: str) -> str | None: ...


class KeyValues(ValueReader, Protocol):
    """The ledger's small persisted values (SqlLedger has them)."""

    def set_value(self, name: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class BreakerReport:
    """The breaker's state at ``at``, and how often it had opened in its process by then."""

    state: BreakerState
    times_opened: int
    at: datetime

    def to_json(self) -> str:
        """The kv value."""
        return json.dumps(
            {
                "state": self.state.value,
                "times_opened": self.times_opened,
                "at": self.at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BreakerReport:
        """Parse a kv value; raises ValueError when it is not one."""
        try:
            data = json.loads(text)
            return cls(
                BreakerState(data["state"]),
                int(data["times_opened"]),
                datetime.fromisoformat(data["at"]),
            )
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not a breaker report: {text!r}") from exc


class BreakerRecorder:
    """A breaker listener that writes each change to the ledger; it never raises."""

    def __init__(self, ledger: KeyValues, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._ledger = ledger
        self._clock = clock

    def __call__(self, state: BreakerState, times_opened: int) -> None:
        report = BreakerReport(state, times_opened, self._clock())
        try:
            self._ledger.set_value(BREAKER_KEY, report.to_json())
        except LedgerError as exc:  # the breaker must work on whatever the ledger does
            _log.warning("breaker_state_not_recorded", state=state.value, error=str(exc))


def read_breaker(ledger: ValueReader) -> BreakerReport | None:
    """The last recorded breaker state, or None when none was recorded (or it is unreadable).

    Raises LedgerError when the ledger cannot be read.
    """
    text = ledger.get_value(BREAKER_KEY)
    if text is None:
        return None
    try:
        return BreakerReport.from_json(text)
    except ValueError:
        _log.warning("breaker_state_unreadable", value=text[:200])
        return None
