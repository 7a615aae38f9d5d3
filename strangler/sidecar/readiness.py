"""Readiness: the ledger is writable, the flag source is loaded, the upstream is reachable.

The upstream probe is a TCP connect (no request reaches the order service), cached for
a second so that frequent probes cost nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from strangler.exceptions import StranglerError
from strangler.protocols import FlagSource, FlagStatus
from strangler.sidecar.seams import SidecarLedger

__all__ = ["Readiness", "ReadinessReport", "tcp_probe"]

_PROBE_TIMEOUT_S = 0.5
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Each check's verdict (``"ok"`` or what is wrong) and how orders are being routed.

    ``routing`` says whether orders route by the current flag definitions, by the last
    good ones while the flag source has a problem, or all go to legacy.
    """

    checks: dict[str, str]
    routing: str = ""

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(verdict == "ok" for verdict in self.checks.values())


def tcp_probe(upstream_url: str) -> str | None:
    """None when a TCP connection to the upstream opens within 0.5 s, else why not."""
    parts = urlsplit(upstream_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"


class Readiness:
    """Runs the three readiness checks; the upstream verdict is reused for ``cache_s``."""

    def __init__(
        self,
        ledger: SidecarLedger,
        flags: FlagSource,
        upstream_url: str,
        *,
        probe: Callable[[str], str | None] = tcp_probe,
        cache_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._flags = flags
        self._upstream_url = upstream_url
        self._probe = probe
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._upstream: tuple[float, str] | None = None

    def report(self) -> ReadinessReport:
        """Check now (the upstream from cache when fresh)."""
        flags = self._flags.status()
        return ReadinessReport(
            {"ledger": self._ledger_check(), "flags": _flags_check(flags), "upstream": self._up()},
            routing=_routing(flags),
        )

    def _ledger_check(self) -> str:
        try:
            self._ledger.ping()
        except StranglerError as exc:
            return f"not writable: {exc}"
        return "ok"

    def _up(self) -> str:
        now = self._clock()
        with self._lock:
            if self._upstream is not None and now - self._upstream[0] < self._cache_s:
                return self._upstream[1]
        problem = self._probe(self._upstream_url)
        verdict = "ok" if problem is None else problem
        with self._lock:
            self._upstream = (now, verdict)
        return verdict


def _flags_check(status: FlagStatus) -> str:
    if status.loaded:
        return "ok"
    return f"not loaded ({status.mode}): {status.last_error or 'no definition yet'}"


def _routing(status: FlagStatus) -> str:
    if not status.loaded:
        return f"every order to legacy: {status.last_error or 'no flag definitions yet'}"
    where = f"flag revision {status.revision} ({status.mode})"
    if status.last_error:
        return f"by the last good {where}: {status.last_error}"
    return f"by {where}"
