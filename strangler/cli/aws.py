"""``strangler aws template | deploy | rollback``: the pipeline on AWS Step Functions + Lambda."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import click
from botocore.config import Config

from strangler.aws.bundle import build_bundle
from strangler.aws.deploy import Deployer, DeployParameters, validate_stack_name
from strangler.aws.exceptions import AwsError
from strangler.aws.rollback import Rollback
from strangler.aws.template import render_template
from strangler.logs import configure_logging
from strangler.settings import Settings

__all__ = ["aws"]

_CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard"})


@click.group("aws")
def aws() -> None:
    """Deploy the instant pipeline to AWS (plain CloudFormation) and roll it back."""


@aws.command("template")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the template to FILE instead of standard output.",
)
def template_command(output: Path | None) -> None:
    """Print the CloudFormation template (JSON) of the pipeline."""
    text = render_template()
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@aws.command("deploy")
@click.option("--stack", required=True, callback=lambda _c, _p, v: _stack(v), help="Stack name.")
@click.option("--bucket", required=True, help="S3 bucket for the Lambda code bundle.")
@click.option("--topic-arn", required=True, help="SNS topic of the order notifications.")
@click.option("--region", help="AWS region [default: STRANGLER_AWS_REGION].")
@click.option("--legacy-url", help="The legacy app's URL [default: STRANGLER_LEGACY_URL].")
def deploy_command(
    stack: str, bucket: str, topic_arn: str, region: str | None, legacy_url: str | None
) -> None:
    """Bundle the handlers, upload them, and create or update STACK via a change set.

    The legacy app's token is read from STRANGLER_LEGACY_TOKEN, never from the command
    line. Dependencies are vendored into the bundle with pip (Lambda's wheels).
    """
    settings = Settings.from_env(aws_region=region, legacy_url=legacy_url)
    configure_logging(settings.log_format, settings.logging_level)
    parameters = DeployParameters(
        order_topic_arn=topic_arn,
        legacy_url=settings.legacy_url,
        legacy_token=settings.legacy_token,
    )
    deployer = Deployer(
        cloudformation=_client("cloudformation", settings.aws_region),
        s3=_client("s3", settings.aws_region),
    )
    try:
        click.echo("building the code bundle (pip vendors the dependencies)...", err=True)
        bundle = build_bundle()
        result = deployer.deploy(stack, bucket, bundle, parameters)
    except AwsError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = {"CREATE": "created", "UPDATE": "updated", "NONE": "unchanged (nothing to deploy)"}
    click.echo(f"stack {stack} {verb[result.action]}: release {result.release_id}")
    click.echo(f"code {result.code_uri}")
    for key, value in sorted(result.outputs.items()):
        click.echo(f"  {key} = {value}")


@aws.command("rollback")
@click.option("--stack", required=True, callback=lambda _c, _p, v: _stack(v), help="Stack name.")
@click.option("--region", help="AWS region [default: STRANGLER_AWS_REGION].")
@click.option("--dry-run", is_flag=True, help="Show what would move; move nothing.")
def rollback_command(stack: str, region: str | None, dry_run: bool) -> None:
    """Point STACK's `live` aliases back at the previous versions, and report what moved."""
    settings = Settings.from_env(aws_region=region)
    configure_logging(settings.log_format, settings.logging_level)
    rollback = Rollback(
        cloudformation=_client("cloudformation", settings.aws_region),
        lambda_client=_client("lambda", settings.aws_region),
        sfn_client=_client("stepfunctions", settings.aws_region),
    )
    try:
        moves = rollback.plan(stack) if dry_run else rollback.run(stack)
    except AwsError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "would move" if dry_run else "moved"
    for move in moves:
        if move.moved:
            click.echo(f"{verb} {move.alias_arn}: version {move.from_version} -> {move.to_version}")
        else:
            click.echo(f"kept  {move.alias_arn}: version {move.from_version} is the first")


def _stack(value: str) -> str:
    try:
        return validate_stack_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, config=_CLIENT_CONFIG)
