"""The execution history: events shaped like GetExecutionHistory's ``events``.

Each event is ``{"timestamp", "type", "id", "previousEventId", "<kind>EventDetails"}``
with inputs and outputs as JSON text, as boto3 returns them. Branches of Parallel and
iterations of Map append from several threads; each keeps its own :class:`Thread`
(its last event id and a one-value JSON cache), and ids are handed out under a lock.

A state's input and output (the ``...StateEntered`` and ``...StateExited`` events), a
Task's result made of plain JSON values (``...Succeeded``) and the execution's output
(``ExecutionSucceeded``) are recorded as
:class:`Deferred` values and written as JSON text only when the history is read
(:class:`ExecutionHistory`): most executions' histories are never read, and those
encodings were the larger part of recording one. Values are never changed in place
inside the executor, so the text written later is the text the value had when recorded.
Likewise, with the default clock (:func:`utc_now`) an event's ``timestamp`` is recorded
as the POSIX time (a float, a tenth of the cost of building the aware datetime) and made
a datetime when the history is read (:func:`stamp_time`).
"""

from __future__ import annotations

import itertools
import json
import operator
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

__all__ = [
    "NOT_PLAIN",
    "NOT_TRUNCATED",
    "Deferred",
    "ExecutionHistory",
    "History",
    "Thread",
    "dumps",
    "plain_copy",
    "stamp_time",
    "utc_now",
]

NOT_TRUNCATED = {"truncated": False}
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
dumps = _ENCODER.encode
_DECODER = json.JSONDecoder()


_ATOMS = frozenset({str, int, float, bool, type(None)})  # values JSON gives back as they were
_MAX_DEPTH = 64  # deeper values (or cyclic ones) are left to the encoder
NOT_PLAIN: Any = object()  # plain_copy's answer for a value it does not copy


def plain_copy(value: Any, depth: int = 0) -> Any:
    """A deep copy of ``value`` equal to what decoding its JSON text gives, or NOT_PLAIN.

    Copied: dicts with string keys, lists, strings, integers, floats, booleans and None
    (exactly those types, no subclasses), nested at most ``_MAX_DEPTH`` deep. Anything
    else (tuples, other keys, other types, cycles) is NOT_PLAIN: the caller encodes and
    decodes it, where the encoder's own conversions and errors apply. About a third of
    the cost of encoding and decoding a handler's usual result.
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if depth >= _MAX_DEPTH:
        return NOT_PLAIN
    if kind is dict:
        return _copy_dict(value, depth)
    if kind is list:
        return _copy_list(value, depth)
    return NOT_PLAIN


def _copy_dict(value: dict[Any, Any], depth: int) -> Any:
    copy = value.copy()  # in C; only the containers inside are replaced by their copies
    for key, item in value.items():
        if type(key) is not str:
            return NOT_PLAIN
        if type(item) not in _ATOMS:
            inner = plain_copy(item, depth + 1)
            if inner is NOT_PLAIN:
                return NOT_PLAIN
            copy[key] = inner
    return copy


def _copy_list(value: list[Any], depth: int) -> Any:
    items = []
    for item in value:
        inner = item if type(item) in _ATOMS else plain_copy(item, depth + 1)
        if inner is NOT_PLAIN:
            return NOT_PLAIN
        items.append(inner)
    return items


def utc_now() -> datetime:
    """The executor's default clock: now, as an aware UTC datetime."""
    return datetime.now(UTC)


def stamp_time(value: datetime | float) -> datetime:
    """An event's timestamp as recorded (a datetime, or the POSIX time the default clock's
    events hold until the history is written) as an aware datetime: the same one the
    written history shows."""
    if type(value) is float:
        return datetime.fromtimestamp(value, UTC)
    assert isinstance(value, datetime)
    return value


class Deferred:
    """A JSON value recorded in an event, written as text when first asked for."""

    __slots__ = ("_text", "value")

    def __init__(self, value: Any, text: str | None = None) -> None:
        self.value = value
        self._text = text

    @property
    def text(self) -> str:
        """The value's JSON text (encoded once)."""
        if self._text is None:
            self._text = dumps(self.value)
        return self._text

    def fresh(self) -> Any:
        """A copy of the value that shares nothing with it, as decoding its text gives."""
        copy = plain_copy(self.value)
        return _DECODER.raw_decode(self.text)[0] if copy is NOT_PLAIN else copy

    def __repr__(self) -> str:
        return f"Deferred({self.value!r})"


class Thread:
    """One line of events (the execution, a branch, an iteration) and its JSON cache."""

    __slots__ = ("_cached", "last")

    def __init__(self, last: int, value: Any = None, text: str | None = "null") -> None:
        self.last = last
        self._cached = Deferred(value, text)  # a value (with its text, when known)

    def dumps(self, value: Any) -> str:
        """JSON text of ``value``; the same object twice in a row is encoded once.

        Values are never changed in place inside the executor, so identity is enough.
        Raises TypeError or ValueError for values JSON cannot hold.
        """
        return self.defer(value).text

    def defer(self, value: Any) -> Deferred:
        """``value`` for an event, its text written when read; the same object twice in a
        row is one Deferred (encoded at most once)."""
        cached = self._cached
        if value is cached.value:
            return cached
        deferred = self._cached = Deferred(value)
        return deferred


class History:
    """Thread-safe, append-only list of events; :meth:`close` freezes it.

    Ids come from a counter (atomic under the GIL) and events are sorted by id when the
    history is closed, so appending needs no lock. With the default clock (:func:`utc_now`)
    timestamps are recorded as POSIX times and written as datetimes when read.
    """

    __slots__ = ("_clock", "_closed", "_events", "_ids", "_posix")

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._posix = clock is utc_now  # the same clock, read as a float
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

        ``details`` may hold :class:`Deferred` values (written as text when the history
        is read). ``advance=False`` leaves the thread's last event where it was, as Step
        Functions does for the end markers of Map iterations and of Map and Parallel
        states. Once the history is closed the event is returned (with id 0) but not kept.
        """
        timestamp: datetime | float
        if self._posix:
            timestamp = _posix_now()
        else:
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

    def close(self) -> ExecutionHistory:
        """Stop accepting events (late ones from abandoned branches are dropped)."""
        self._closed = True
        return ExecutionHistory(tuple(sorted(self._events, key=_EVENT_ID)))


class ExecutionHistory(Sequence[dict[str, Any]]):
    """A finished execution's events, oldest first, as GetExecutionHistory shows them.

    A read-only sequence of event dicts (equal to the tuple of them). State inputs and
    outputs are written as JSON text on the first read of any event, once, for all;
    :meth:`unwritten` gives the events before that, for readers that look only at what
    is never deferred (types, ids, timestamps, names, errors) or read a Deferred's value
    (:meth:`Deferred.fresh`).
    """

    __slots__ = ("_events", "_lock", "_written")

    def __init__(self, events: tuple[dict[str, Any], ...]) -> None:
        self._events = events
        self._written = False
        self._lock = threading.Lock()

    def unwritten(self) -> tuple[dict[str, Any], ...]:
        """The events as recorded: ``input`` and ``output`` of state events and the
        ``output`` of a Task's ``...Succeeded`` and of ``ExecutionSucceeded`` may still be
        :class:`Deferred`, and ``timestamp`` a POSIX time (read it with
        :func:`stamp_time`); every other field is final."""
        return self._events

    def events(self) -> tuple[dict[str, Any], ...]:
        """The events with every value written as JSON text."""
        if not self._written:
            with self._lock:
                if not self._written:
                    _write(self._events)
                    self._written = True
        return self._events

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[dict[str, Any], ...]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | tuple[dict[str, Any], ...]:
        return self.events()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ExecutionHistory):
            return self.events() == other.events()
        if isinstance(other, tuple | list):
            return self.events() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # holds dicts, like the tuple it stands for

    def __repr__(self) -> str:
        return f"ExecutionHistory({self.events()!r})"

    def __reduce__(self) -> tuple[type, tuple[tuple[dict[str, Any], ...]]]:
        # Pickled as the plain tuple of written events.
        return tuple, (self.events(),)


def _write(events: tuple[dict[str, Any], ...]) -> None:
    """Replace every Deferred in the events' details by its JSON text and every POSIX
    timestamp by its datetime (in place: the events are this history's own, and only
    these values change)."""
    for event in events:
        stamp = event["timestamp"]
        if type(stamp) is float:
            event["timestamp"] = datetime.fromtimestamp(stamp, UTC)
        for value in event.values():
            if type(value) is dict:
                for key, item in value.items():
                    if type(item) is Deferred:
                        value[key] = item.text


_EVENT_ID = operator.itemgetter("id")
_posix_now = time.time
