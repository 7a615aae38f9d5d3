"""A thread-safe circuit breaker: fail fast while the legacy app is down, probe to recover.

closed --(failure_threshold consecutive failures)--> open
open --(reset_timeout_s elapsed; the next call is the probe)--> half_open
half_open --(probe succeeds)--> closed;  half_open --(probe fails)--> open again

While open, and while a half-open probe is in flight, :meth:`CircuitBreaker.before_call`
raises :class:`CircuitOpen` instead of letting the call through.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable

import structlog

from strangler.legacy_adapter.exceptions import CircuitOpen

__all__ = ["BreakerState", "CircuitBreaker"]

_log = structlog.get_logger()


class BreakerState(enum.StrEnum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failed calls and opens after ``failure_threshold`` of them.

    ``clock`` returns seconds (monotonic); inject a fake one in tests. One instance can
    be shared by several clients that talk to the same app.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "legacy",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s must be positive, got {reset_timeout_s}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._times_opened = 0
        self._listeners: list[Callable[[BreakerState, int], None]] = []

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cool-down is over reads as half-open."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failed calls since the last success."""
        with self._lock:
            return self._failures

    @property
    def times_opened(self) -> int:
        """How often the breaker has opened (from closed, or again after a failed probe)."""
        with self._lock:
            return self._times_opened

    def add_listener(self, listener: Callable[[BreakerState, int], None]) -> None:
        """Call ``listener(state, times_opened)`` after each change of state.

        It runs in the calling thread, outside the breaker's lock, and must not raise.
        """
        self._listeners.append(listener)

    def before_call(self) -> None:
        """Let a call through, or raise CircuitOpen; a call let through must be reported."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._state = BreakerState.HALF_OPEN
                self._probe_in_flight = False
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                opened = self._times_opened
            else:
                raise CircuitOpen(self._retry_after())
        self._notify(BreakerState.HALF_OPEN, opened)

    def record_success(self) -> None:
        """Report a call that reached the app; closes the breaker."""
        with self._lock:
            was = self._state
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_in_flight = False
            opened = self._times_opened
        if was is not BreakerState.CLOSED:
            _log.info("legacy_breaker_closed", breaker=self.name)
            self._notify(BreakerState.CLOSED, opened)

    def record_failure(self) -> None:
        """Report a call that found the app unavailable; may open the breaker."""
        with self._lock:
            self._failures += 1
            probe_failed = self._state is BreakerState.HALF_OPEN
            if not probe_failed and self._failures < self.failure_threshold:
                return
            was_closed = self._state is BreakerState.CLOSED
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._probe_in_flight = False
            failures = self._failures
            if was_closed or probe_failed:
                self._times_opened += 1
            opened = self._times_opened
        if was_closed or probe_failed:
            _log.warning(
                "legacy_breaker_opened",
                breaker=self.name,
                consecutive_failures=failures,
                reset_timeout_s=self.reset_timeout_s,
            )
            self._notify(BreakerState.OPEN, opened)

    def record_abandoned(self) -> None:
        """Report a call that ended without a verdict on the app (a bug, an interrupt)."""
        with self._lock:
            self._probe_in_flight = False

    def _notify(self, state: BreakerState, times_opened: int) -> None:
        for listener in self._listeners:
            listener(state, times_opened)

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_timeout_s

    def _retry_after(self) -> float:
        if self._state is BreakerState.HALF_OPEN:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))
