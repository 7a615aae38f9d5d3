"""The ``strangler serve`` command."""

from __future__ import annotations

import click

from strangler.exceptions import ConfigurationError
from strangler.logs import configure_logging
from strangler.settings import Settings
from strangler.sidecar.interception import FieldMapping, OrderRoute

__all__ = ["front_config", "serve"]


@click.command("serve")
@click.option("--host", help="Address to listen on [STRANGLER_SERVE_HOST, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [STRANGLER_SERVE_PORT, 8080].")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="HTTP worker processes [STRANGLER_SERVE_WORKERS, 1].",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="Threads per worker process, and upstream connections kept [STRANGLER_SERVE_THREADS, 16].",
)
@click.option("--upstream", "upstream_url", help="The order service [STRANGLER_UPSTREAM_URL].")
@click.option(
    "--intake-only",
    is_flag=True,
    help="Take orders in but process none here; run `strangler worker` to process them.",
)
@click.option(
    "--front",
    type=click.Choice(["python", "nginx"]),
    default="python",
    show_default=True,
    help="What serves the public port: the Python proxy, or nginx (only the order route, "
    "/_strangler/ and /metrics reach Python).",
)
@click.option(
    "--routing",
    type=click.Choice(["process", "inline"]),
    default="process",
    show_default=True,
    help="Route orders in a child process of their own (faster intake), or in the HTTP "
    "worker processes.",
)
@click.option(
    "--routing-processes",
    type=int,
    help="How many routing child processes (--routing process) share the ledger; one "
    "uses about one core at most. [default: STRANGLER_ROUTING_PROCESSES or 1]",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    upstream_url: str | None,
    intake_only: bool,
    front: str,
    routing: str,
    routing_processes: int | None,
) -> None:
    """Run the sidecar: proxy to the order service, take orders in, route and record them."""
    try:
        settings = Settings.from_env(
            serve_host=host,
            serve_port=port,
            serve_workers=workers,
            serve_threads=threads,
            upstream_url=upstream_url,
            routing_processes=routing_processes,
        )
        OrderRoute.parse(settings.order_route)
        FieldMapping.parse(settings.order_fields)
        _check_ranges(settings)
        if settings.routing_processes > 1 and (routing != "process" or intake_only):
            raise ConfigurationError(
                f"STRANGLER_ROUTING_PROCESSES (--routing-processes) is "
                f"{settings.routing_processes}, but only --routing process without "
                "--intake-only starts routing processes"
            )
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_format, settings.logging_level)
    if front == "python" and (routing == "inline" or intake_only):
        from strangler.sidecar.server import serve as run  # noqa: PLC0415  (server's docstring)

        run(settings, process_orders=not intake_only)
        return
    from strangler.sidecar.supervisor import supervise  # noqa: PLC0415

    try:
        code = supervise(
            settings,
            front=None if front == "python" else front,
            routing="none" if intake_only else "process" if routing == "process" else "inline",
        )
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    raise click.exceptions.Exit(code)


@click.command("front-config")
@click.argument("engine", type=click.Choice(["nginx"]))
def front_config(engine: str) -> None:
    """Print the front-mode config (nginx.conf) that `serve --front nginx` runs."""
    from strangler.sidecar.front_nginx import front_paths, nginx_config  # noqa: PLC0415

    del engine  # nginx is the only engine
    try:
        settings = Settings.from_env()
        click.echo(nginx_config(settings, front_paths(settings)), nl=False)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


_RANGES = {
    "serve_port": (0, 65535),
    "serve_workers": (1, 64),
    "serve_threads": (1, 1024),
    "routing_processes": (1, 64),
    "upstream_timeout_s": (1, 3600),
}


def _check_ranges(settings: Settings) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise ConfigurationError(
                f"STRANGLER_{name.upper()} must be between {low} and {high}, got {value}"
            )
