"""Prometheus metrics of one sidecar process, and the ``/metrics`` exposition.

Event metrics (proxy latency, upstream errors, intake results) are counted where they
happen. Ledger-wide figures (orders per path and status, processing time per path,
fallbacks and other hand-offs, backlog, rejected bodies, flag revision age) are read
from the ledger and the flag source at scrape time, so every worker process reports
the same shared truth.

Under gunicorn with several worker processes, ``strangler serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports prometheus_client and passes the
directory here; the scrape then merges every worker's files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from strangler.background.breaker_report import ValueReader, read_breaker
from strangler.exceptions import StranglerError
from strangler.legacy_adapter import BreakerState
from strangler.protocols import FlagSource
from strangler.sidecar.ops_metrics import (
    DefinedFlags,
    LedgerFile,
    LedgerOpsCollector,
    ReadinessCollector,
    RolloutShareCollector,
    WalSizeCollector,
)
from strangler.sidecar.order_durations import OrderDurations
from strangler.sidecar.readiness import Readiness
from strangler.sidecar.seams import SidecarLedger

__all__ = ["CONTENT_TYPE", "SidecarMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PROXY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_log = structlog.get_logger(__name__)


class SidecarMetrics:
    """The metric objects of one sidecar app, on a registry of its own."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        self.proxy_latency = Histogram(
            "strangler_proxy_request_duration_seconds",
            "Time from receiving a proxied request to its answer's headers from the upstream.",
            buckets=_PROXY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "strangler_proxy_upstream_errors",
            "Proxied requests answered 502/504 because the upstream failed.",
            ["kind"],
            registry=self.registry,
        )
        self.intake = Counter(
            "strangler_intake_notifications",
            "Order notifications received, by source and result.",
            ["source", "result"],
            registry=self.registry,
        )
        self.intake_missed = Counter(
            "strangler_intake_missed",
            "Orders the upstream created that the ledger could not take in at once "
            "(reconciliation adopts them).",
            ["source"],
            registry=self.registry,
        )
        # Exported at 0 from the start, so that the first miss is an increase to alert on.
        self.intake_missed.labels("proxy")
        self.intake.labels("proxy", "failed")
        self._scraped: list[Collector] = []

    def watch(
        self, ledger: SidecarLedger, flags: FlagSource, *, readiness: Readiness | None = None
    ) -> None:
        """Report ledger-wide figures, order durations and flag freshness at scrape time.

        The ledger's counts, alerting figures (strangler.sidecar.ops_metrics), processing
        times (strangler.sidecar.order_durations) and the legacy breaker's last state (see
        strangler.background.breaker_report) come through its seam; the rollout shares are
        left out with a flag source that shows no definition, the WAL's size off a SQLite
        file. ``readiness`` adds each readiness check as a gauge.
        """
        self._scraped = [
            _LedgerCollector(ledger, flags),
            LedgerOpsCollector(ledger),
            OrderDurations(ledger),
            _BreakerCollector(ledger),
        ]
        if isinstance(ledger, LedgerFile) and ledger.sqlite_file is not None:
            self._scraped.append(WalSizeCollector(ledger.sqlite_file))
        if isinstance(flags, DefinedFlags):
            self._scraped.append(RolloutShareCollector(flags))
        if readiness is not None:
            self._scraped.append(ReadinessCollector(readiness))

    def count_intake(self, source: str, result: str) -> None:
        """Count one notification: result is new, duplicate, invalid or failed."""
        self.intake.labels(source, result).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric of this process (or all workers)."""
        registry = CollectorRegistry()
        if self._multiprocess_dir is not None:
            MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            registry.register(_Delegate(self.registry))
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class _LedgerCollector(Collector):
    def __init__(self, ledger: SidecarLedger, flags: FlagSource) -> None:
        self._ledger = ledger
        self._flags = flags

    def collect(self) -> Iterator[Metric]:
        yield from self._ledger_metrics()
        yield from self._flag_metrics()

    def _ledger_metrics(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("strangler_ledger_up", "1 when the ledger answered this scrape.")
        try:
            counts = self._ledger.counts()
        except StranglerError as exc:
            _log.warning("metrics_ledger_unreadable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        orders = GaugeMetricFamily(
            "strangler_orders",
            "Orders in the ledger by path and status.",
            labels=["path", "status"],
        )
        for (path, status), count in sorted(counts.by_path_status.items()):
            orders.add_metric([path, status], count)
        yield orders
        handoffs = GaugeMetricFamily(
            "strangler_handoffs",
            "Instant-path orders handed to the batch jobs, by kind (fallback, legacy_owned).",
            labels=["kind"],
        )
        for kind, count in sorted(counts.handoffs.items()):
            handoffs.add_metric([kind], count)
        yield handoffs
        yield GaugeMetricFamily(
            "strangler_instant_errors",
            "Instant-path orders that fell back or ended failed, each order once "
            "(the gate's error_rate numerator).",
            value=counts.instant_errors,
        )
        yield GaugeMetricFamily(
            "strangler_ledger_backlog", "Orders not yet terminal.", value=counts.backlog
        )
        yield GaugeMetricFamily(
            "strangler_rejected_intake", "Bodies kept in the rejected table.", value=counts.rejected
        )
        sources = GaugeMetricFamily(
            "strangler_orders_by_source",
            "Orders in the ledger by how they came in (reconciled: adopted after a missed intake).",
            labels=["source"],
        )
        # "reconciled" is exported at 0 too, so that the first adoption is an increase.
        for source, count in sorted({"reconciled": 0, **counts.by_source}.items()):
            sources.add_metric([source], count)
        yield sources
        yield GaugeMetricFamily(
            "strangler_orders_unknown_to_legacy",
            "Open orders the legacy app never reported, as the last reconciliation found.",
            value=counts.unknown_to_legacy,
        )

    def _flag_metrics(self) -> Iterator[Metric]:
        status = self._flags.status()
        yield GaugeMetricFamily(
            "strangler_flag_loaded", "1 when the flag definition is loaded.", value=status.loaded
        )
        if status.loaded_at is not None:
            age = (datetime.now(UTC) - status.loaded_at).total_seconds()
            yield GaugeMetricFamily(
                "strangler_flag_revision_age_seconds",
                "Seconds since the flag source last loaded its definition.",
                value=max(age, 0.0),
            )


class _BreakerCollector(Collector):
    def __init__(self, ledger: ValueReader) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[Metric]:
        try:
            report = read_breaker(self._ledger)
        except StranglerError as exc:
            _log.warning("metrics_breaker_unreadable", error=str(exc))
            return
        if report is None:
            return
        state = GaugeMetricFamily(
            "strangler_legacy_breaker_state",
            "1 for the state the legacy app's circuit breaker last reported, 0 for the others.",
            labels=["state"],
        )
        for candidate in BreakerState:
            state.add_metric([candidate.value], int(candidate is report.state))
        yield state
        yield GaugeMetricFamily(
            "strangler_legacy_breaker_openings",
            "Times the breaker had opened since its process started, as it last reported.",
            value=report.times_opened,
        )
