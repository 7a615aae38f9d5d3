"""``strangler legacy-sim``: run the legacy Rails app simulator."""

from __future__ import annotations

from pathlib import Path

import click

from strangler.logs import configure_logging
from strangler.settings import Settings
from strangler.sim.app import create_app
from strangler.sim.config import DEFAULT_JOB_INTERVAL_S, SimConfig
from strangler.sim.divergence import parse_divergence
from strangler.sim.exceptions import InvalidInput
from strangler.sim.faults import OUTAGES, FaultConfig
from strangler.sim.rules import DEFAULT_FRAUD_LIMIT_CENTS, Rules
from strangler.sim.serving import serve

__all__ = ["legacy_sim"]


@click.command("legacy-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file (default: legacy-sim.sqlite3 in STRANGLER_DATA_DIR).",
)
@click.option(
    "--job-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_JOB_INTERVAL_S,
    show_default=True,
    help="Seconds between batch job runs.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--no-scheduler", is_flag=True, help="Run jobs only via POST /jobs/<name>/run.")
@click.option("--seed", type=int, help="Seed of the fault randomness (repeatable runs).")
@click.option("--threads", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option(
    "--token",
    help="Require this bearer token (default: STRANGLER_LEGACY_TOKEN, if set).",
)
@click.option("--basic-auth", metavar="USER:PASSWORD", help="Require HTTP basic credentials.")
@click.option(
    "--fraud-limit-cents",
    type=click.IntRange(min=0),
    default=DEFAULT_FRAUD_LIMIT_CENTS,
    show_default=True,
    help="Fraud scan rejects larger amounts.",
)
@click.option("--block-user", multiple=True, metavar="USER_GUID", help="Fraud blocklist entry.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Failed batch attempts at one stage before an order is failed.",
)
@click.option(
    "--api-divergence",
    metavar="STEP=SHARE[,...]",
    default="",
    help="The per-order API decides differently for this share of orders (by order id), "
    "e.g. fraud_scan=0.05.",
)
@click.option("--latency-ms", type=click.IntRange(0, 60_000), default=0, help="Added latency.")
@click.option("--jitter-ms", type=click.IntRange(0, 60_000), default=0, help="Random extra.")
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Share answered HTTP 500."
)
@click.option("--outage", type=click.Choice(OUTAGES), default="none", help="Start in an outage.")
@click.option("--outage-seconds", type=click.FloatRange(min=0, min_open=True))
@click.option("--slow-jobs-ms", type=click.IntRange(0, 60_000), default=0, help="Per order.")
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default=None)
def legacy_sim(
    host: str,
    port: int,
    db: Path | None,
    job_interval: float,
    batch_size: int,
    no_scheduler: bool,
    seed: int | None,
    threads: int,
    token: str | None,
    basic_auth: str | None,
    fraud_limit_cents: int,
    block_user: tuple[str, ...],
    max_attempts: int,
    api_divergence: str,
    latency_ms: int,
    jitter_ms: int,
    error_rate: float,
    outage: str,
    outage_seconds: float | None,
    slow_jobs_ms: int,
    log_format: str | None,
) -> None:
    """Run the legacy Rails app simulator: orders, batch jobs, per-order API, faults.

    Business rules and faults: docs/legacy.md. HTTP contract: docs/legacy-api.yaml.
    """
    settings = Settings.from_env()
    configure_logging(log_format or settings.log_format, settings.logging_level)
    if token and basic_auth:
        raise click.UsageError("give --token or --basic-auth, not both")
    try:
        faults = FaultConfig(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            outage=outage,
            outage_seconds=outage_seconds,
            slow_jobs_ms=slow_jobs_ms,
        )
    except InvalidInput as exc:
        raise click.UsageError(exc.message) from exc
    try:
        divergence = parse_divergence(api_divergence)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-divergence") from exc
    config = SimConfig(
        db_path=db or settings.data_dir / "legacy-sim.sqlite3",
        job_interval_s=job_interval,
        batch_size=batch_size,
        seed=seed,
        scheduler=not no_scheduler,
        token=token or (None if basic_auth else settings.legacy_token),
        basic_auth=_credentials(basic_auth),
        rules=Rules(
            fraud_limit_cents=fraud_limit_cents,
            blocked_users=frozenset(block_user),
            max_attempts=max_attempts,
            api_divergence=divergence,
        ),
        faults=faults,
    )
    serve(create_app(config), host=host, port=port, threads=threads)


def _credentials(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise click.BadParameter("must look like USER:PASSWORD", param_hint="--basic-auth")
    return user, password
