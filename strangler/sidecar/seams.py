"""What the sidecar needs from the rest of strangler, as small Protocols.

The real parts are strangler.routing.runtime.Runtime and strangler.rollout.controller's controller
(whose Protocol, RolloutController, is re-exported here); unit tests put hand-written
fakes here instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from strangler.ledger.records import (
    DurationBuckets,
    LedgerCounts,
    RolloutEvent,
    RolloutEventFields,
)
from strangler.orders import OrderNotification
from strangler.protocols import FlagSource
from strangler.rollout.controller import RolloutController

if TYPE_CHECKING:
    from strangler.ledger.ops_queries import OpsFigures
    from strangler.report.report import Report
    from strangler.report.verdict import Thresholds

__all__ = [
    "IntakeOutcome",
    "IntakeRouter",
    "ReportRunner",
    "RolloutController",
    "SidecarLedger",
    "SidecarRuntime",
]


class IntakeOutcome(Protocol):
    """What the router says about one intake."""

    @property
    def new(self) -> bool: ...

    @property
    def order_id(self) -> str: ...


class IntakeRouter(Protocol):
    """Takes an order in: durable row first, duplicates change nothing."""

    def intake(self, order: OrderNotification, *, source: str) -> IntakeOutcome: ...


class SidecarLedger(Protocol):
    """The part of the ledger (SqlLedger) the sidecar reads and writes.

    Every method raises LedgerError when the ledger cannot be read or written.
    """

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None: ...

    def story(self, order_id: str) -> dict[str, Any] | None: ...

    def backlog(self) -> int: ...

    def counts(self) -> LedgerCounts: ...

    def probe(self) -> None:
        """Raise unless the ledger answers a read now (a read-only snapshot)."""
        ...

    def record_rollout_event(self, event: RolloutEventFields) -> bool: ...

    def rollout_events(self) -> list[RolloutEvent]: ...

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        thresholds: Thresholds | None = None,
        examples: int = 10,
        now: datetime | None = None,
    ) -> Report:
        """The comparison report (``/_strangler/report``, the gate's verdict)."""
        ...

    def duration_histogram(self) -> list[DurationBuckets]:
        """Processing times per path and outcome (``/metrics``)."""
        ...

    def ops_figures(self) -> OpsFigures:
        """The alerting figures (``/metrics``)."""
        ...

    def get_value(self, name: str) -> str | None:
        """A small persisted value, such as the legacy breaker's last state (``/metrics``)."""
        ...


class ReportRunner(Protocol):
    """Computes the report and gate endpoints' answers (strangler.sidecar.report_process)."""

    def report(self, *, since: datetime | None, until: datetime | None, examples: int) -> str:
        """The report over ``[since, until)`` as docs/reports.md's JSON text."""
        ...

    def gate(
        self, params: dict[str, str], rollout: dict[str, Any], *, now: datetime | None = None
    ) -> str:
        """The gate endpoint's answer to ``params`` for the ``rollout`` read (JSON text of
        strangler.sidecar.gate_answer.GateAnswer)."""
        ...

    def close(self) -> None:
        """Release what computing reports holds (idempotent)."""
        ...


class SidecarRuntime(Protocol):
    """The router, ledger and flag source of one process, and their background workers."""

    @property
    def router(self) -> IntakeRouter: ...

    @property
    def ledger(self) -> SidecarLedger: ...

    @property
    def flags(self) -> FlagSource: ...

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...
