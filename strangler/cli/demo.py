"""The ``strangler demo`` command."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from strangler.exceptions import ConfigurationError
from strangler.logs import configure_logging
from strangler.settings import Settings

if TYPE_CHECKING:
    from strangler.demo.run import ProgressBar

__all__ = ["demo"]


@click.command("demo")
@click.option("--orders", type=click.IntRange(1, 100_000), default=300, show_default=True)
@click.option(
    "--rollout",
    type=click.IntRange(0, 100),
    default=50,
    show_default=True,
    help="Percentage of users on the new side.",
)
@click.option(
    "--shadow",
    type=click.IntRange(0, 100),
    default=20,
    show_default=True,
    help="Of the new side, the share in shadow mode (the rest instant).",
)
@click.option("--job-interval", type=click.FloatRange(0.2, 60), default=2.0, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(1, 2_000),
    default=50.0,
    show_default=True,
    help="Orders per second sent through the sidecar.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--api-divergence",
    metavar="STEP=SHARE",
    help="Make the simulator's per-order API disagree with its batch jobs for a share of "
    "orders (e.g. fraud_scan=0.1): the comparison finds it and the gate refuses.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="strangler-demo-report.html",
    show_default=True,
    help="Where to write the HTML comparison report.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the ledger, legacy database and logs here instead of a temporary dir.",
)
def demo(
    orders: int,
    rollout: int,
    shadow: int,
    job_interval: float,
    rate: float,
    seed: int,
    api_divergence: str | None,
    report_path: Path,
    workdir: Path | None,
) -> None:
    """Run legacy simulator + sidecar on loopback, route orders, account for all, compare.

    Ends with the HTML comparison report, the rollout gate's decision and a headline.
    """
    # Imported here: the demo loads the whole stack, which `strangler rollout` must not pay.
    from strangler.demo.run import DemoOptions, run_demo  # noqa: PLC0415

    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.flags_file.is_file():
        raise click.ClickException(
            f"the flag file {settings.flags_file} was not found (looked in {Path.cwd()}): run "
            "`strangler demo` from the project root, where flags/ is, or set "
            "STRANGLER_FLAGS_FILE to the flag file"
        )
    configure_logging("console")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    options = DemoOptions(
        orders=orders,
        rollout=rollout,
        variants={"instant": 100 - shadow, "shadow": shadow},
        job_interval_s=job_interval,
        rate_per_s=rate,
        seed=seed,
        workdir=workdir.resolve() if workdir else None,
        api_divergence=api_divergence,
        report_path=report_path,
    )
    run = run_demo(options, settings, click.echo, _progress_bar)
    if not run.summary.ok:
        raise click.ClickException("not every order was accounted for; see the lines above")


def _progress_bar(length: int, label: str) -> AbstractContextManager[ProgressBar]:
    return click.progressbar(length=length, label=label)
