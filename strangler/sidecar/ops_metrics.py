"""Metrics an operator alerts on, computed at scrape time from shared state.

- :class:`LedgerOpsCollector`: the routing backlog and its oldest order, orders in flight
  per path and the oldest of each, the gate's decisions (a counter kept by the ledger's
  ``rollout_events``, so it counts the rounds of ``strangler rollout advance`` run in any
  process, and survives restarts), the background roles' last successful pass, and the
  shadow and noise comparisons per step of the last hour.
- :class:`RolloutShareCollector`: the share of new orders the flag sends to instant and to
  shadow, and whether the flag is killed, from the definition the flag source has loaded.
- :class:`ReadinessCollector`: each ``/_strangler/readyz`` check as a gauge, so that
  Prometheus sees a ledger that cannot be written.

Ledger-wide figures are the same from every sidecar sharing a ledger: aggregate them
with ``max``, not ``sum``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strangler.exceptions import StranglerError
from strangler.flags.file import FlagDefinition
from strangler.ledger.ops_queries import OpenLoad, OpsFigures
from strangler.sidecar.readiness import Readiness

__all__ = [
    "DefinedFlags",
    "LedgerFile",
    "LedgerOpsCollector",
    "OpsLedger",
    "ReadinessCollector",
    "RolloutShareCollector",
    "WalSizeCollector",
]

_ROUTED = ("legacy", "instant", "shadow")
_PER_MILLE = 1000
_PERCENT = 100
_log = structlog.get_logger(__name__)


class OpsLedger(Protocol):
    """A ledger that reads its alerting figures (SqlLedger does)."""

    def ops_figures(self) -> OpsFigures: ...


@runtime_checkable
class LedgerFile(Protocol):
    """A ledger that names its SQLite file (SqlLedger does; None off SQLite files)."""

    @property
    def sqlite_file(self) -> Path | None: ...


class WalSizeCollector(Collector):
    """The size of a SQLite ledger's ``-wal`` file, which the routing processes'
    checkpointer keeps down and long reads hold up (docs/ledger.md)."""

    def __init__(self, database: Path) -> None:
        self._wal = Path(f"{database}-wal")

    def collect(self) -> Iterator[Metric]:
        """One gauge; 0 when there is no ``-wal`` file. Only ``stat``: opening and closing
        the file would drop SQLite's POSIX locks in this process."""
        try:
            size = os.stat(self._wal).st_size
        except FileNotFoundError:
            size = 0
        yield GaugeMetricFamily(
            "strangler_ledger_wal_bytes",
            "Size of the SQLite ledger's write-ahead log file (checkpointed in the background).",
            value=size,
        )


@runtime_checkable
class DefinedFlags(Protocol):
    """A flag source that shows the definition it routes by (the SDK sources do)."""

    def definition(self) -> FlagDefinition | None: ...


class LedgerOpsCollector(Collector):
    """Backlog, in-flight orders, gate decisions, role heartbeats, recent comparisons."""

    def __init__(self, ledger: OpsLedger) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[Metric]:
        """Yield nothing when the ledger cannot be read (``strangler_ledger_up`` says so)."""
        try:
            figures = self._ledger.ops_figures()
        except StranglerError as exc:
            _log.warning("metrics_ops_figures_unreadable", error=str(exc))
            return
        yield from _backlog(figures)
        yield from _in_flight(figures)
        yield from _gate(figures)
        yield from _heartbeats(figures)
        yield from _compared(figures)


def _backlog(figures: OpsFigures) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "strangler_routing_backlog_orders",
        "Orders received (durable in the ledger) and not yet routed.",
        value=figures.unrouted.orders,
    )
    yield GaugeMetricFamily(
        "strangler_routing_backlog_oldest_age_seconds",
        "Age of the oldest order received and not yet routed (0 when there is none).",
        value=figures.age_s(figures.unrouted),
    )


def _in_flight(figures: OpsFigures) -> Iterator[Metric]:
    count = GaugeMetricFamily(
        "strangler_orders_in_flight",
        "Routed orders not yet terminal, per path.",
        labels=["path"],
    )
    age = GaugeMetricFamily(
        "strangler_orders_in_flight_oldest_age_seconds",
        "Age (since intake) of the oldest routed order not yet terminal, per path (0: none).",
        labels=["path"],
    )
    for path in sorted({*_ROUTED, *figures.in_flight}):
        load = figures.in_flight.get(path, OpenLoad(0, None))
        count.add_metric([path], load.orders)
        age.add_metric([path], figures.age_s(load))
    yield count
    yield age


def _gate(figures: OpsFigures) -> Iterator[Metric]:
    decisions = CounterMetricFamily(
        "strangler_gate_decisions",
        "Rounds of the rollout gate (strangler rollout advance), by decision, as the "
        "ledger's rollout_events record them.",
        labels=["decision"],
    )
    last = GaugeMetricFamily(
        "strangler_gate_last_decision_timestamp_seconds",
        "When the rollout gate last took each decision (Unix time; absent: never).",
        labels=["decision"],
    )
    for decision, tally in figures.gate.items():
        decisions.add_metric([decision], tally.count)
        if tally.last_at is not None:
            last.add_metric([decision], tally.last_at.timestamp())
    yield decisions
    yield last


def _heartbeats(figures: OpsFigures) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "strangler_role_last_success_timestamp_seconds",
        "When a background role (follower, reconciler) last finished a pass without error "
        "(Unix time; absent: never).",
        labels=["role"],
    )
    for role, at in sorted(figures.heartbeats.items()):
        family.add_metric([role], at.timestamp())
    yield family


def _compared(figures: OpsFigures) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "strangler_comparison_steps_last_hour",
        "Compared steps of orders routed in the last hour, by kind (shadow: instant dry "
        "run against the batch jobs; noise: legacy against itself), step and verdict.",
        labels=["kind", "step", "verdict"],
    )
    for (kind, step, verdict), n in sorted(figures.compared_steps.items()):
        family.add_metric([kind, step, verdict], n)
    yield family


class RolloutShareCollector(Collector):
    """The share of new orders on instant and on shadow, and whether the flag is killed."""

    def __init__(self, flags: DefinedFlags) -> None:
        self._flags = flags

    def collect(self) -> Iterator[Metric]:
        """Yield nothing before the flag source has loaded a definition."""
        definition = self._flags.definition()
        if definition is None:
            return
        yield GaugeMetricFamily(
            "strangler_flag_killed",
            "1 when the flag is disabled (every new order goes to legacy), else 0.",
            value=int(not definition.enabled),
        )
        share = GaugeMetricFamily(
            "strangler_rollout_share_ratio",
            "Share of new orders the flag sends to a path (rollout x variant weight; 0 when "
            "killed).",
            labels=["path"],
        )
        rollout = definition.rollout / _PERCENT if definition.enabled else 0.0
        for path in ("instant", "shadow"):
            weight = definition.variant_weights.get(path, 0) / _PER_MILLE
            share.add_metric([path], rollout * weight)
        yield share


class ReadinessCollector(Collector):
    """``strangler_readiness_ok{check}``: what ``/_strangler/readyz`` answers, per check.

    Each scrape runs the checks, as a readiness probe does.
    """

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def collect(self) -> Iterator[Metric]:
        """Yield 1 for each check that passes, 0 for each that does not."""
        report = self._readiness.report()
        family = GaugeMetricFamily(
            "strangler_readiness_ok",
            "1 when a /_strangler/readyz check (ledger, flags, upstream) passes, else 0.",
            labels=["check"],
        )
        for check, verdict in sorted(report.checks.items()):
            family.add_metric([check], int(verdict == "ok"))
        yield family
