"""``strangler aws``: the commands, their options and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strangler.aws.template import build_template
from strangler.cli.main import main


def test_template_prints_the_cloudformation_json() -> None:
    """`strangler aws template` prints the template as JSON."""
    result = CliRunner().invoke(main, ["aws", "template"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == build_template()


def test_template_writes_a_file(tmp_path: Path) -> None:
    """`--output FILE` writes the template there and says so on stderr."""
    target = tmp_path / "pipeline.json"
    result = CliRunner().invoke(main, ["aws", "template", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == build_template()


def test_deploy_refuses_a_bad_stack_name_before_any_work() -> None:
    """An unusable stack name is a usage error naming the rule; nothing is built or called."""
    result = CliRunner().invoke(
        main,
        ["aws", "deploy", "--stack", "bad_name", "--bucket", "b", "--topic-arn", "arn:x"],
    )
    assert result.exit_code == 2
    assert "letters, digits or hyphens" in result.output


def test_aws_group_lists_its_commands() -> None:
    """`strangler aws --help` lists template, deploy and rollback."""
    result = CliRunner().invoke(main, ["aws", "--help"])
    assert result.exit_code == 0
    for command in ("template", "deploy", "rollback"):
        assert command in result.output
