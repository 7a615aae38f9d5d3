"""Readiness: the ledger answers, the flag source is loaded, the upstream is reachable.

Readiness answers within a second, always. The ledger check is one read in a read-only
snapshot (it never waits on a writer) that also finds a ledger which would refuse every
write (SqlLedger.probe: a standby, a read-only file system). It runs on a thread of its
own and is waited for at most :data:`LEDGER_PROBE_TIMEOUT_S`: a ledger that does not
answer in time is a failed check that says so, and a probe still running is waited on
again rather than doubled.
The upstream probe is a TCP connect (no request reaches the order service), cached for
a second so that frequent probes cost nothing; it runs while the ledger probe does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from strangler.exceptions import StranglerError
from strangler.protocols import FlagSource, FlagStatus
from strangler.sidecar.seams import SidecarLedger

__all__ = ["LEDGER_PROBE_TIMEOUT_S", "Readiness", "ReadinessReport", "tcp_probe"]

# With the upstream probe's 0.5 s running beside it, readiness answers well inside 1 s.
LEDGER_PROBE_TIMEOUT_S = 0.8
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
        ledger_timeout_s: float = LEDGER_PROBE_TIMEOUT_S,
    ) -> None:
        self._ledger = ledger
        self._flags = flags
        self._upstream_url = upstream_url
        self._probe = probe
        self._cache_s = cache_s
        self._clock = clock
        self._ledger_timeout_s = ledger_timeout_s
        self._lock = threading.Lock()
        self._upstream: tuple[float, str] | None = None
        self._ledger_probe: Future[str] | None = None

    def report(self) -> ReadinessReport:
        """Check now (the upstream from cache when fresh); returns within about a second."""
        started = time.monotonic()
        ledger = self._start_ledger_probe()
        flags = self._flags.status()
        upstream = self._up()
        remaining = self._ledger_timeout_s - (time.monotonic() - started)
        return ReadinessReport(
            {
                "ledger": _verdict(ledger, remaining, self._ledger_timeout_s),
                "flags": _flags_check(flags),
                "upstream": upstream,
            },
            routing=_routing(flags),
        )

    def _start_ledger_probe(self) -> Future[str]:
        """The probe in flight, or a new one on a thread of its own."""
        with self._lock:
            pending = self._ledger_probe
            if pending is not None and not pending.done():
                return pending
            future: Future[str] = Future()
            self._ledger_probe = future
        thread = threading.Thread(
            target=self._probe_ledger, args=(future,), name="readiness-ledger", daemon=True
        )
        thread.start()
        return future

    def _probe_ledger(self, future: Future[str]) -> None:
        try:
            self._ledger.probe()
        except StranglerError as exc:
            future.set_result(f"not ready: {exc}")
        except Exception as exc:  # a readiness verdict, never a crashed probe thread
            future.set_result(f"not ready: {type(exc).__name__}: {exc}")
        else:
            future.set_result("ok")

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


def _verdict(probe: Future[str], wait_s: float, timeout_s: float) -> str:
    try:
        return probe.result(timeout=max(wait_s, 0.0))
    except FutureTimeout:
        return (
            f"no answer within {timeout_s:g} s: the ledger did not answer a read "
            "(database unreachable, or its connections all busy)"
        )


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
