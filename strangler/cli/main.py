"""The ``strangler`` command line: one click group, sub-commands from each part."""

from __future__ import annotations

import click

from strangler import __version__
from strangler.cli.aws import aws
from strangler.cli.demo import demo
from strangler.cli.legacy_sim import legacy_sim
from strangler.cli.report import report
from strangler.cli.rollout import rollout
from strangler.cli.serve import front_config, serve
from strangler.cli.worker import worker

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strangler")
def main() -> None:
    """Migrate batch order processing to an instant pipeline, one order at a time."""


main.add_command(aws)
main.add_command(demo)
main.add_command(front_config)
main.add_command(legacy_sim)
main.add_command(report)
main.add_command(rollout)
main.add_command(serve)
main.add_command(worker)
