"""``strangler worker``: process orders from a shared ledger, without serving HTTP.

A worker runs the dispatcher and the legacy follower of a :class:`Runtime`: it takes up
the orders sidecars wrote to the ledger (``STRANGLER_LEDGER_URL``, PostgreSQL when shared)
and processes them under leases, so workers scale apart from intake. SIGTERM or SIGINT
stops it gracefully. Exit codes: 0 stopped cleanly, 2 bad configuration, 1 the ledger
could not be opened.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
import structlog

from strangler.exceptions import ConfigurationError, LedgerError
from strangler.logs import configure_logging
from strangler.settings import Settings

__all__ = ["worker"]

_log = structlog.get_logger()


@click.command("worker")
@click.option("--ledger-url", default=None, help="SQLAlchemy URL of the ledger.")
@click.option("--legacy-url", default=None, help="Base URL of the legacy app.")
@click.option("--workers", type=int, default=None, help="Worker threads (orders at a time).")
@click.option("--lease-seconds", type=int, default=None, help="How long a claim holds.")
@click.option("--poll-interval-ms", type=int, default=None, help="Ledger and legacy polling.")
@click.option(
    "--stop-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to let orders in flight finish on SIGTERM.",
)
@click.option(
    "--log-format", type=click.Choice(["auto", "json", "console"]), default=None, help="Logs."
)
def worker(
    ledger_url: str | None,
    legacy_url: str | None,
    workers: int | None,
    lease_seconds: int | None,
    poll_interval_ms: int | None,
    stop_timeout: float,
    log_format: str | None,
) -> None:
    """Process orders from the ledger (dispatcher and legacy follower) until SIGTERM."""
    # Imported here: the runtime loads the whole stack, which `strangler rollout` must not pay.
    from strangler.routing.affinity import check_routing_cpus, keep_routing_cpu  # noqa: PLC0415
    from strangler.routing.heap import freeze_start_up_heap  # noqa: PLC0415
    from strangler.routing.runtime import Runtime  # noqa: PLC0415

    try:
        settings = Settings.from_env(
            ledger_url=ledger_url,
            legacy_url=legacy_url,
            workers=workers,
            lease_seconds=lease_seconds,
            poll_interval_ms=poll_interval_ms,
            log_format=log_format,
        )
        configure_logging(settings.log_format, settings.logging_level)
        check_routing_cpus(settings.routing_cpus)
        runtime = Runtime.from_settings(settings)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(2) from exc
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(1) from exc
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _log.info("worker_stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    keeper = keep_routing_cpu(settings.routing_cpus)
    freeze_start_up_heap()
    runtime.start()
    # Waiting in short slices keeps the main thread responsive to signals.
    while not stopping.wait(0.5):
        pass
    runtime.stop(stop_timeout)
    if keeper is not None:
        keeper.stop()
