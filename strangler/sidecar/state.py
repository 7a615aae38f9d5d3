"""Everything one sidecar app holds, kept in ``app.extensions["strangler"]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from flask import Flask, current_app

from strangler.settings import Settings
from strangler.sidecar.access_log import AccessLog
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.readiness import Readiness
from strangler.sidecar.report_cache import ReportCache
from strangler.sidecar.seams import ReportRunner, RolloutController, SidecarRuntime
from strangler.sidecar.sns import SnsVerifier

if TYPE_CHECKING:
    from strangler.sidecar.auth import AdminToken

__all__ = ["EXTENSION", "SidecarState", "sidecar_state"]

EXTENSION = "strangler"
_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class SidecarState:
    """The parts of one sidecar app and the background work it owns."""

    settings: Settings
    runtime: SidecarRuntime
    rollout: RolloutController
    metrics: SidecarMetrics
    access_log: AccessLog
    admin_token: AdminToken
    sns: SnsVerifier
    confirm_subscription: Callable[[str], None]
    readiness: Readiness
    reports: ReportRunner
    started: bool = False
    report_cache: ReportCache[str] = field(default_factory=ReportCache)

    def start(self, *, process_orders: bool = True) -> None:
        """Start the runtime's workers (idempotent).

        With ``process_orders`` False only the intake runs: orders wait in the ledger for
        ``strangler worker`` processes (or another sidecar) to process them.
        """
        if self.started:
            return
        if process_orders:
            self.runtime.start()
        self.started = True
        _log.info("sidecar_workers_started", upstream=self.settings.upstream_url)

    def stop(self, timeout: float) -> None:
        """Stop the runtime within ``timeout`` seconds."""
        self.reports.close()
        if not self.started:
            return
        self.started = False
        self.runtime.stop(timeout)
        _log.info("sidecar_workers_stopped")


def sidecar_state(app: Flask | None = None) -> SidecarState:
    """The state of ``app`` (default: the current app)."""
    state: SidecarState = (app or current_app).extensions[EXTENSION]
    return state
