"""Fault injection: latency, an error rate, outages (hang or refuse) and slow jobs.

Randomness comes from generators seeded with ``seed`` (one for errors, one for jitter),
so a run with the same seed and the same sequence of requests injects the same faults.
``/healthz`` and ``/_sim/*`` are never faulted, so tests can always reach the control.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from strangler.sim.exceptions import InvalidInput
from strangler.sim.model import format_ts

__all__ = ["OUTAGES", "FaultConfig", "FaultInjector", "Listener"]

OUTAGES = ("none", "hang", "refuse")
MAX_MS = 60_000
MAX_OUTAGE_S = 3600.0

_log = structlog.get_logger()


class Listener(Protocol):
    """The server's listening socket, as the refuse outage needs it."""

    def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused."""
        ...

    def start_listening(self) -> None:
        """Open it again."""
        ...


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The faults in force (the FaultConfig object of docs/legacy-api.yaml)."""

    latency_ms: int = 0
    jitter_ms: int = 0
    error_rate: float = 0.0
    outage: str = "none"
    outage_seconds: float | None = None
    slow_jobs_ms: int = 0

    def __post_init__(self) -> None:
        errors = _problems(self)
        if errors:
            raise InvalidInput(errors)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> tuple[FaultConfig, int | None]:
        """Parse a PUT body: (config, seed or None); raises InvalidInput naming fields."""
        errors: dict[str, str] = {}
        unknown = set(data) - {*cls.__dataclass_fields__, "seed"}
        for name in sorted(unknown):
            errors[name] = "is not a fault setting"
        values: dict[str, Any] = {}
        for name in ("latency_ms", "jitter_ms", "slow_jobs_ms"):
            _take(data, name, int, values, errors)
        _take(data, "error_rate", (int, float), values, errors)
        _take(data, "outage", str, values, errors)
        _take(data, "outage_seconds", (int, float), values, errors)
        seed: dict[str, Any] = {}
        _take(data, "seed", int, seed, errors)
        if errors:
            raise InvalidInput(errors)
        return cls(**values), seed.get("seed")

    def to_json(self) -> dict[str, Any]:
        """The config fields of a FaultState."""
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
            "outage": self.outage,
            "slow_jobs_ms": self.slow_jobs_ms,
        }


class FaultInjector:
    """Applies the faults to requests and job runs; thread-safe."""

    def __init__(
        self,
        config: FaultConfig | None = None,
        *,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sleep = sleep
        self._now = now
        self._lock = threading.Lock()
        self._error_rng = random.Random(seed)
        self._jitter_rng = random.Random(None if seed is None else seed + 1)
        self._config = FaultConfig()
        self._outage_ends_at: datetime | None = None
        self._outage_over = threading.Event()
        self._outage_over.set()
        self._timer: threading.Timer | None = None
        self._listener: Listener | None = None
        self._stats = {"requests": 0, "injected_errors": 0, "held": 0, "refused_windows": 0}
        self.configure(config or FaultConfig())

    def attach(self, listener: Listener) -> None:
        """Connect the server's listening socket, which a ``refuse`` outage closes.

        Until one is attached, a refuse outage answers 503 and closes the connection.
        """
        self._listener = listener
        if self.config.outage == "refuse":
            listener.stop_listening()

    def configure(self, config: FaultConfig, *, seed: int | None = None) -> None:
        """Replace the faults in force; an outage starts now (and ends on its own, if timed)."""
        with self._lock:
            if seed is not None:
                self._error_rng.seed(seed)
                self._jitter_rng.seed(seed + 1)
            previous = self._config.outage
            self._config = config
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._outage_ends_at = None
            if config.outage != "none" and config.outage_seconds is not None:
                self._outage_ends_at = self._now() + timedelta(seconds=config.outage_seconds)
                self._timer = threading.Timer(config.outage_seconds, self._end_outage, (config,))
                self._timer.daemon = True
                self._timer.start()
            if config.outage == "hang":
                self._outage_over.clear()
            else:
                self._outage_over.set()
            if config.outage == "refuse" and previous != "refuse":
                self._stats["refused_windows"] += 1
        if previous == "refuse" and config.outage != "refuse" and self._listener:
            self._listener.start_listening()
        if config.outage == "refuse" and previous != "refuse" and self._listener:
            self._listener.stop_listening()
        _log.info("sim_faults_configured", **config.to_json(), outage_seconds=config.outage_seconds)

    def close(self) -> None:
        """Cancel a pending outage end and let held requests go."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._outage_over.set()

    @property
    def config(self) -> FaultConfig:
        """The faults in force."""
        with self._lock:
            return self._config

    def state(self) -> dict[str, Any]:
        """The FaultState object of docs/legacy-api.yaml."""
        with self._lock:
            ends = self._outage_ends_at
            return {
                **self._config.to_json(),
                "outage_ends_at": format_ts(ends) if ends else None,
                "stats": dict(self._stats),
            }

    def before_request(self) -> tuple[int, dict[str, str]] | None:
        """Apply the faults to one request: an error answer (status, body), or None to go on."""
        with self._lock:
            config = self._config
            self._stats["requests"] += 1
            delay_ms = config.latency_ms + self._jitter_rng.uniform(0, config.jitter_ms)
            inject_error = self._error_rng.random() < config.error_rate
            if config.outage == "hang":
                self._stats["held"] += 1
            if inject_error and config.outage == "none":
                self._stats["injected_errors"] += 1
        if config.outage == "hang":
            self._outage_over.wait()
            return 503, _error("outage", "the app was in an outage; the request was not processed")
        if config.outage == "refuse":
            return 503, _error("outage", "the app is refusing connections")
        if delay_ms > 0:
            self._sleep(delay_ms / 1000)
        if inject_error:
            return 500, _error("injected_fault", "simulated internal server error")
        return None

    def slow_job_delay(self) -> None:
        """Sleep as long as the slow-jobs fault says, once per order a job processes."""
        delay_ms = self.config.slow_jobs_ms
        if delay_ms > 0:
            self._sleep(delay_ms / 1000)

    def _end_outage(self, config: FaultConfig) -> None:
        with self._lock:
            if self._config is not config:
                return
        _log.info("sim_outage_over", outage=config.outage)
        self.configure(
            FaultConfig(
                latency_ms=config.latency_ms,
                jitter_ms=config.jitter_ms,
                error_rate=config.error_rate,
                slow_jobs_ms=config.slow_jobs_ms,
            )
        )


def _problems(config: FaultConfig) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in ("latency_ms", "jitter_ms", "slow_jobs_ms"):
        value = getattr(config, name)
        if not 0 <= value <= MAX_MS:
            errors[name] = f"must be between 0 and {MAX_MS}, got {value}"
    if not 0.0 <= config.error_rate <= 1.0:
        errors["error_rate"] = f"must be between 0 and 1, got {config.error_rate}"
    if config.outage not in OUTAGES:
        errors["outage"] = f"must be one of {', '.join(OUTAGES)}, got {config.outage!r}"
    seconds = config.outage_seconds
    if seconds is not None and not 0 < seconds <= MAX_OUTAGE_S:
        errors["outage_seconds"] = f"must be above 0 and at most {MAX_OUTAGE_S:g}, got {seconds}"
    if config.outage == "refuse" and seconds is None:
        errors["outage_seconds"] = (
            "is required with outage 'refuse': nothing can reach the app to end it"
        )
    return errors


def _take(
    data: Mapping[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    into: dict[str, Any],
    errors: dict[str, str],
) -> None:
    value = data.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind):
        errors[name] = f"has the wrong type: {type(value).__name__}"
        return
    into[name] = value


def _error(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}
