"""One strangler process's parts, built from Settings and wired together.

The ledger, the flag source, the legacy client and the instant backend come from
Settings unless given (tests and embedders inject their own); the router, the dispatcher
and the legacy follower (which runs the reconciliation sweep) are built on top.
:meth:`Runtime.start` starts the background workers and :meth:`Runtime.stop` stops them
and closes what the runtime built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import structlog

from strangler.background.breaker_report import BreakerRecorder
from strangler.background.comparer import Comparer
from strangler.background.follower import Follower
from strangler.background.noise import LegacyDryRun, NoiseProbe
from strangler.background.reconciler import Reconciler
from strangler.background.retention import Retention
from strangler.compare.config import CompareConfig
from strangler.flags import flag_source_from_settings
from strangler.instant.handlers import LegacySteps
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.legacy_adapter import LegacyClient
from strangler.protocols import FlagSource, InstantBackend, LegacyPath
from strangler.routing.dispatcher import LeaseDispatcher
from strangler.routing.router import RetryPolicy, Router
from strangler.routing.wakeups import (
    OncePerOrder,
    WakeupReceiver,
    WakeupSender,
    wakeup_directory,
)
from strangler.settings import Settings

__all__ = ["LegacyApp", "Runtime"]

_log = structlog.get_logger()


class LegacyApp(LegacyPath, LegacySteps, Protocol):
    """The legacy app as both the router and the local instant backend use it."""


class Runtime:
    """The router, ledger, flag source, dispatcher and follower of one process."""

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: SqlLedger,
        flags: FlagSource,
        legacy: LegacyPath,
        instant: InstantBackend,
        closers: list[Callable[[], None]] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.flags = flags
        self.legacy = legacy
        self.instant = instant
        poll_interval_s = settings.poll_interval_ms / 1000
        self.router = Router(
            ledger, flags, legacy, instant, retry=RetryPolicy(max_attempts=settings.max_attempts)
        )
        self.dispatcher = LeaseDispatcher(
            self.router,
            ledger,
            workers=settings.workers,
            lease_seconds=settings.lease_seconds,
            poll_interval_s=poll_interval_s,
        )
        # Intake wakes this process's dispatcher and every routing process on this host;
        # on PostgreSQL every routing process hears of it by NOTIFY too: the first
        # wake-up about an order wakes the dispatcher, the repeat is dropped. A
        # notification claims on the listener's thread (no hand-off to the feeder);
        # intake in this process and the socket only wake the feeder, so that the
        # intake's caller does not wait for a claim.
        wakeup_dir = wakeup_directory(settings, ledger)
        self.wakeups = WakeupSender(wakeup_dir)
        self._wake_once = OncePerOrder(self.dispatcher.wake)
        self.router.on_intake = self._on_intake
        self._receiver = WakeupReceiver(wakeup_dir, self._wake_once)
        self._listener = ledger.intake_listener(self._claim_once)
        # SQLite: the WAL is checkpointed here, not in a writer's (the intake's) commit.
        self._checkpointer = ledger.wal_checkpointer()
        self.reconciler = Reconciler(
            ledger,
            legacy,
            grace_s=settings.reconcile_grace_s,
            unknown_age_s=settings.reconcile_unknown_age_s,
            interval_s=settings.reconcile_interval_s,
        )
        self.comparer = Comparer(
            ledger,
            CompareConfig.from_settings(settings),
            sweep_interval_s=settings.compare_sweep_interval_s,
        )
        self.router.on_dry_run = self.comparer.notify
        self.noise = (
            NoiseProbe(
                ledger,
                legacy,
                share=settings.noise_sample,
                config=self.comparer.config,
                sweep_interval_s=settings.compare_sweep_interval_s,
            )
            if isinstance(legacy, LegacyDryRun)
            else None
        )
        if self.noise is not None:
            self.router.on_legacy_routed = self.noise.probe
        self.follower = Follower(
            ledger,
            legacy,
            interval_s=poll_interval_s,
            owner=self.dispatcher.owner,
            reconcile=self.reconciler.maybe_sweep,
            on_legacy_terminal=self._legacy_terminal,
            sweep=self._sweeps,
        )
        self.retention = Retention(
            ledger,
            archive_dir=settings.archive_dir,
            days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            owner=self.dispatcher.owner,
        )
        self._breaker = legacy.breaker if isinstance(legacy, LegacyClient) else None
        if self._breaker is not None:
            self._breaker.add_listener(BreakerRecorder(ledger))
        self._closers = [*(closers or []), self.wakeups.close]
        self._started = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        flag_source: FlagSource | None = None,
        ledger: SqlLedger | None = None,
        legacy: LegacyApp | None = None,
        instant: InstantBackend | None = None,
    ) -> Runtime:
        """Build every part not given from ``settings``; nothing starts yet.

        Parts built here are closed by :meth:`stop`; parts given are left to the caller.
        Raises ConfigurationError for a wrong setting and LedgerError when the ledger
        cannot be opened.
        """
        closers: list[Callable[[], None]] = []
        try:
            if ledger is None:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                ledger = ledger_from_url(settings.effective_ledger_url)
                closers.append(ledger.close)
            if flag_source is None:
                built_flags = flag_source_from_settings(settings)
                closers.append(built_flags.close)
                flag_source = built_flags
            if legacy is None:
                client = LegacyClient.from_settings(settings)
                closers.append(client.close)
                legacy = client
            if instant is None:
                instant = _instant_backend(settings, legacy)
                _close_later(instant, closers)
        except BaseException:
            _run_closers(closers)
            raise
        return cls(
            settings=settings,
            ledger=ledger,
            flags=flag_source,
            legacy=legacy,
            instant=instant,
            closers=closers,
        )

    def _legacy_terminal(self, order_id: str) -> None:
        """The batch jobs finished an order: compare it, and judge it again for noise."""
        self.comparer.notify(order_id)
        if self.noise is not None:
            self.noise.repeat(order_id)

    def _sweeps(self) -> None:
        self.comparer.sweep_if_due()
        if self.noise is not None:
            self.noise.sweep_if_due()

    def start(self) -> None:
        """Start the dispatcher (resuming unfinished orders), its wake-ups, follower, retention,
        and on SQLite the WAL checkpointer."""
        if self._started:
            raise RuntimeError("this runtime was started already; build a new one")
        self._started = True
        if self._breaker is not None:  # /metrics shows the breaker from the start
            BreakerRecorder(self.ledger)(self._breaker.state, self._breaker.times_opened)
        # Listening before the first claim: no order falls between the two.
        self._receiver.start()
        if self._listener is not None:
            self._listener.start()
        self.dispatcher.start()
        self.follower.start()
        if self._checkpointer is not None:
            self._checkpointer.start()
        if self.settings.retention_days:
            self.retention.start()
        _log.info("runtime_started", ledger=self.ledger.url, owner=self.dispatcher.owner)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, let in-flight orders finish (up to ``timeout`` s), close parts.

        Orders still in flight at the deadline keep their leases until they expire, then
        another worker resumes them.
        """
        deadline = time.monotonic() + timeout
        if self._started:
            self._receiver.stop()
            if self._listener is not None:
                self._listener.stop()
            self.dispatcher.stop(timeout)
            self.follower.stop(max(0.1, deadline - time.monotonic()))
            if self.settings.retention_days:
                self.retention.stop(max(0.1, deadline - time.monotonic()))
            if self._checkpointer is not None:
                self._checkpointer.stop()
        _run_closers(self._closers)
        self._closers = []
        _log.info("runtime_stopped")

    def _on_intake(self, order_id: str) -> None:
        self._wake_once(order_id)
        self.wakeups.send(order_id)

    def _claim_once(self, order_id: str | None) -> None:
        if self._wake_once.first(order_id):
            self.dispatcher.claim_now()

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _instant_backend(settings: Settings, legacy: LegacyApp) -> InstantBackend:
    # Imported when built: the backends pull in boto3, which an injected backend never needs.
    from strangler.instant.backends import instant_backend_from_settings  # noqa: PLC0415

    return instant_backend_from_settings(settings, legacy)


def _close_later(part: object, closers: list[Callable[[], None]]) -> None:
    # The InstantBackend Protocol has no close(); the local backend has a thread pool.
    close = getattr(part, "close", None)
    if callable(close):
        closers.append(close)


def _run_closers(closers: list[Callable[[], None]]) -> None:
    for close in reversed(closers):
        try:
            close()
        except Exception as exc:  # one part failing to close must not skip the rest
            _log.warning("close_failed", part=repr(close), error=str(exc))
