"""Periodic work one process at a time: a loop under a ledger role, and a cadence.

:class:`RoleLoop` is the background thread of the follower and of retention: each turn it
takes or keeps a role in the ledger (``worker_leases``) and works only while it holds
it, so that of several processes sharing a ledger one does the work; stopped, it gives
the role up so another takes over at once rather than when the role expires.
:class:`Cadence` spaces the jobs run inside such a loop (the comparison and
reconciliation sweeps) more widely than its turns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from strangler.backoff import Backoff
from strangler.exceptions import LedgerError

__all__ = ["Cadence", "RoleLedger", "RoleLoop"]

_log = structlog.get_logger()


class RoleLedger(Protocol):
    """The part of the ledger a role loop uses (SqlLedger implements it)."""

    def hold_role(self, name: str, owner: str, *, seconds: float) -> bool:
        """Take or keep a role one process at a time plays; True while ``owner`` has it."""
        ...

    def give_up_role(self, name: str, owner: str) -> None: ...


class RoleLoop:
    """Calls ``work`` on a background thread while ``owner`` holds ``role``, until stopped.

    Each turn takes or keeps the role for ``role_seconds``, calls ``work`` when it holds
    it, then waits ``backoff.delay_s(failures)``, ``failures`` being the turns in a row
    that raised. A turn that raises one of ``survives`` is passed to ``failed`` with the
    seconds the loop waits next (from inside the ``except`` clause, so a handler may log
    the traceback); any other exception ends the loop. ``name`` names the thread
    (``strangler-<name>``) and the warning logged when the role cannot be given up.
    """

    def __init__(
        self,
        ledger: RoleLedger,
        role: str,
        *,
        owner: str,
        role_seconds: float,
        work: Callable[[], object],
        backoff: Backoff,
        failed: Callable[[Exception, float], None],
        survives: tuple[type[Exception], ...] = (Exception,),
        name: str,
    ) -> None:
        self.ledger = ledger
        self.role = role
        self.owner = owner
        self.role_seconds = role_seconds
        self.name = name
        self._work = work
        self._backoff = backoff
        self._failed = failed
        self._survives = survives
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the loop on a daemon thread; raises RuntimeError when started before."""
        if self._thread is not None:
            raise RuntimeError(f"this {self.name} was started already; build a new one")
        self._thread = threading.Thread(
            target=self._run, name=f"strangler-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """End the loop and give up the role; False when the turn under way did not end.

        Waits at most ``timeout`` seconds for the turn under way. A ledger error while
        giving the role up is logged, not raised: the role then expires by itself.
        """
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        try:
            self.ledger.give_up_role(self.role, self.owner)
        except LedgerError as exc:
            _log.warning(f"{self.name}_role_not_given_up", error=str(exc))
        return True

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self.ledger.hold_role(self.role, self.owner, seconds=self.role_seconds):
                    self._work()
            except self._survives as exc:
                failures += 1
                self._failed(exc, self._backoff.delay_s(failures))
            else:
                failures = 0
            self._stopping.wait(self._backoff.delay_s(failures))


class Cadence:
    """Says when a periodic job is due: at the first ask, then once per ``interval_s``.

    Safe to share between threads: of callers asking at once, one is told it is due.
    """

    def __init__(
        self, interval_s: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next: float | None = None

    def due(self) -> bool:
        """True when the job is due, and the next one then is ``interval_s`` from now."""
        with self._lock:
            now = self._monotonic()
            if self._next is not None and now < self._next:
                return False
            self._next = now + self.interval_s
            return True
