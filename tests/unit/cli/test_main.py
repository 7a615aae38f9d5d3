"""``strangler``: the group loads each sub-command on first use, and ``--help`` stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from strangler.cli.main import COMMANDS, LazyCommand, LazyGroup, main
from tests.helpers import strangler_cmd

# What a listing or a file-mode `rollout show` must not load: each costs 0.05-1 s to import.
HEAVY = ("sqlalchemy", "boto3", "botocore", "flask", "werkzeug", "UnleashClient", "matplotlib")

PROBE = """
import json, sys
from strangler.cli.main import main
main(sys.argv[1:], prog_name="strangler", standalone_mode=False)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(%r)))))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("strangler.cli."))))
"""


def _probe(env: dict[str, str], *args: str) -> tuple[list[str], list[str], list[str]]:
    """Run the CLI with ``args`` in a fresh interpreter: its output lines, heavy and CLI modules."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE % json.dumps([*HEAVY, "requests"]), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    *output, heavy, cli = done.stdout.splitlines()
    return output, json.loads(heavy), json.loads(cli)


@pytest.fixture
def file_mode(flag_file: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of the shipped default: a flag file, no Unleash server."""
    env = {
        **os.environ,
        "STRANGLER_FLAGS_FILE": str(flag_file),
        "STRANGLER_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("STRANGLER_UNLEASH_URL", None)
    return env


def test_help_lists_every_command_and_imports_none(file_mode: dict[str, str]) -> None:
    """`strangler --help` in a fresh process lists each command, loading no command module."""
    output, heavy, cli = _probe(file_mode, "--help")
    listed = [line.split()[0] for line in output[output.index("Commands:") + 1 :] if line]
    assert (listed, heavy, cli) == (sorted(COMMANDS), [], ["strangler.cli.main"])


def test_rollout_show_in_file_mode_stays_light(file_mode: dict[str, str]) -> None:
    """`strangler rollout show` on a flag file loads no SQL, AWS, web, Unleash or HTTP library."""
    output, heavy, cli = _probe(file_mode, "rollout", "show")
    assert (output[1].split(" (")[0], heavy, cli) == (
        "mode      embedded",
        [],
        ["strangler.cli.main", "strangler.cli.rollout"],
    )


def _every_command() -> dict[str, click.Command]:
    """Each table entry's command, loaded (None, for an entry that names nothing, fails)."""
    ctx = click.Context(main)
    loaded = {name: main.get_command(ctx, name) for name in COMMANDS}
    return {name: command for name, command in loaded.items() if command is not None}


def test_the_listing_is_what_the_commands_themselves_say() -> None:
    """Each table entry names a click command whose own one-line help is the table's."""
    assert {name: cmd.get_short_help_str(1000) for name, cmd in _every_command().items()} == {
        name: entry.short_help for name, entry in COMMANDS.items()
    }


def test_help_reads_as_an_eager_group_would() -> None:
    """The lazy group's --help is, to the character, that of a group with every command added."""
    eager = click.Group(
        "main",
        commands=_every_command(),
        params=main.params,
        help=main.help,
        context_settings=main.context_settings,
    )
    lazy = LazyGroup(
        "main",
        lazy=COMMANDS,
        params=main.params,
        help=main.help,
        context_settings=main.context_settings,
    )
    runner = CliRunner()
    lazy_help = runner.invoke(lazy, ["--help"], prog_name="strangler")
    eager_help = runner.invoke(eager, ["--help"], prog_name="strangler")
    assert (lazy_help.exit_code, lazy_help.output) == (0, eager_help.output)


def test_an_unknown_command_is_a_usage_error() -> None:
    """A command name outside the table exits 2 naming it, as click does for any group."""
    result = CliRunner().invoke(main, ["rollouts"])
    assert result.exit_code == 2
    assert "No such command 'rollouts'" in result.output


def test_a_table_entry_that_is_no_command_says_so() -> None:
    """A table entry pointing at something other than a click command raises naming it."""
    group = LazyGroup(lazy={"oops": LazyCommand("strangler.cli.main:COMMANDS", "Not one.")})
    with pytest.raises(TypeError, match=r"strangler\.cli\.main:COMMANDS is not a click command"):
        group.get_command(click.Context(group), "oops")


def test_python_dash_m_strangler_help() -> None:
    """`python -m strangler --help` in its own process exits 0 and lists the commands."""
    done = subprocess.run(
        strangler_cmd("--help"), capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert all(f"  {name} " in done.stdout for name in COMMANDS)


def test_the_console_script_points_at_the_group() -> None:
    """The installed `strangler` script's entry point loads this group."""
    (script,) = entry_points(group="console_scripts", name="strangler")
    assert script.load() is main


def test_a_group_without_commands_shows_no_commands_section() -> None:
    """An empty table gives the usual help without a `Commands:` heading."""
    result = CliRunner().invoke(LazyGroup("empty", lazy={}), ["--help"])
    assert (result.exit_code, "Commands:" in result.output) == (0, False)
