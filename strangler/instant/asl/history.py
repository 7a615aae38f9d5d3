"""The execution history: events shaped like GetExecutionHistory's ``events``.

Each event is ``{"timestamp", "type", "id", "previousEventId", "<kind>EventDetails"}``
with inputs and outputs as JSON text, as boto3 returns them. Branches of Parallel and
iterations of Map append from several threads; each keeps its own :class:`Thread`
(its last event id and a one-value JSON cache), and ids are handed out under a lock.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["NOT_TRUNCATED", "History", "Thread", "dumps"]

NOT_TRUNCATED = {"truncated": False}
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
dumps = _ENCODER.encode


class Thread:
    """One line of events (the execution, a branch, an iteration) and its JSON cache."""

    __slots__ = ("_cached_json", "_cached_value", "last")

    def __init__(self, last: int) -> None:
        self.last = last
        self._cached_value: Any = None
        self._cached_json = "null"

    def dumps(self, value: Any) -> str:
        """JSON text of ``value``; the same object twice in a row is encoded once.

        Values are never changed in place inside the executor, so identity is enough.
        Raises TypeError or ValueError for values JSON cannot hold.
        """
        if value is self._cached_value:
            return self._cached_json
        text = dumps(value)
        self._cached_value = value
        self._cached_json = text
        return text


class History:
    """Thread-safe, append-only list of events; :meth:`close` freezes it.

    Ids come from a counter (atomic under the GIL) and events are sorted by id when the
    history is closed, so appending needs no lock.
    """

    __slots__ = ("_clock", "_closed", "_events", "_ids")

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._closed = False

    def add(
        self,
        thread: Thread,
        kind: str,
        details_key: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        advance: bool = True,
    ) -> dict[str, Any]:
        """Append an event after ``thread``'s last one and return it.

        ``advance=False`` leaves the thread's last event where it was, as Step Functions
        does for the end markers of Map iterations and of Map and Parallel states. Once
        the history is closed the event is returned (with id 0) but not kept.
        """
        timestamp = self._clock()
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        event_id = 0 if self._closed else next(self._ids)
        event: dict[str, Any] = {
            "timestamp": timestamp,
            "type": kind,
            "id": event_id,
            "previousEventId": thread.last,
        }
        if details_key is not None:
            event[details_key] = details
        if event_id:
            self._events.append(event)
            if advance:
                thread.last = event_id
        return event

    def close(self) -> tuple[dict[str, Any], ...]:
        """Stop accepting events (late ones from abandoned branches are dropped)."""
        self._closed = True
        events = sorted(self._events, key=_event_id)
        return tuple(events)


def _event_id(event: dict[str, Any]) -> int:
    return int(event["id"])
