"""The ``strangler`` command line: one click group whose sub-commands load on first use.

Each sub-command's module pulls its part's dependencies (SQLAlchemy, boto3, Flask, ...),
so the group imports a module only when its command runs or shows its own help; listing
the commands (``strangler --help``) reads the one-line help from :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click

from strangler import __version__

__all__ = ["COMMANDS", "LazyCommand", "LazyGroup", "main"]


class LazyCommand(NamedTuple):
    """Where a sub-command lives (``module:attribute``) and its one-line help."""

    target: str
    short_help: str


COMMANDS: Mapping[str, LazyCommand] = {
    "aws": LazyCommand(
        "strangler.cli.aws:aws",
        "Deploy the instant pipeline to AWS (plain CloudFormation) and roll it back.",
    ),
    "demo": LazyCommand(
        "strangler.cli.demo:demo",
        "Run legacy simulator + sidecar on loopback, route orders, account for all, compare.",
    ),
    "front-config": LazyCommand(
        "strangler.cli.serve:front_config",
        "Print the front-mode config (nginx.conf) that `serve --front nginx` runs.",
    ),
    "legacy-sim": LazyCommand(
        "strangler.cli.legacy_sim:legacy_sim",
        "Run the legacy Rails app simulator: orders, batch jobs, per-order API, faults.",
    ),
    "report": LazyCommand(
        "strangler.cli.report:report",
        "Report on the orders routed in a window: paths, shadow mismatches, A/B arms, verdict.",
    ),
    "rollout": LazyCommand(
        "strangler.cli.rollout:rollout",
        "Show and change the rollout of the city_orders_instant_processing flag.",
    ),
    "serve": LazyCommand(
        "strangler.cli.serve:serve",
        "Run the sidecar: proxy to the order service, take orders in, route and record them.",
    ),
    "worker": LazyCommand(
        "strangler.cli.worker:worker",
        "Process orders from the ledger (dispatcher and legacy follower) until SIGTERM.",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module the first time it is asked for.

    click's documented lazy-loading pattern (as Flask's ``FlaskGroup`` does): the
    command's module is imported by :meth:`get_command`, and the listing in ``--help``
    uses the table's one-line help, so it imports nothing.
    """

    def __init__(
        self, name: str | None = None, *, lazy: Mapping[str, LazyCommand], **attrs: Any
    ) -> None:
        super().__init__(name, **attrs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, loaded or not, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module on first use; None if unknown."""
        loaded = super().get_command(ctx, cmd_name)
        if loaded is not None or cmd_name not in self.lazy:
            return loaded
        command = _load(self.lazy[cmd_name].target)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The ``Commands:`` section; a table entry's help comes from the table, unimported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(ctx, name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str:
        entry = self.lazy.get(name)
        if entry is None:
            command = super().get_command(ctx, name)
            return "" if command is None else command.get_short_help_str(limit)
        # A help-only stand-in: click shortens it to the width exactly as for the real one.
        return click.Command(name, help=entry.short_help).get_short_help_str(limit)


def _load(target: str) -> click.Command:
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command but {type(command).__name__}")
    return command


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="strangler")
def main() -> None:
    """Migrate batch order processing to an instant pipeline, one order at a time."""
