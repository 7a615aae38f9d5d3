"""Roll the pipeline back by moving its ``live`` aliases to the previous versions.

Every release publishes new function versions (and a new state machine version when the
definition changed) and keeps the replaced ones, so a bad release is undone without a
redeploy: each Lambda ``live`` alias goes to the function's previous published version,
and the state machine ``live`` alias to the previous state machine version. The plan is
made for every alias before anything moves; an alias with no earlier version stays
where it is and is reported as such.

The stack still describes the release that was rolled back (the aliases drift from it):
deploy a fixed release to move forward again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from strangler.aws.exceptions import RollbackError

__all__ = ["AliasMove", "Rollback"]

log = structlog.get_logger()

LAMBDA_ALIAS = "AWS::Lambda::Alias"
STATE_MACHINE_ALIAS = "AWS::StepFunctions::StateMachineAlias"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One alias: where it pointed and where it points after the rollback.

    ``kind`` is ``lambda`` or ``state-machine``; versions are numbers as text;
    ``to_version`` is None when there was no earlier version (the alias did not move).
    """

    kind: str
    alias_arn: str
    from_version: str
    to_version: str | None
    target: str | None = None

    @property
    def moved(self) -> bool:
        """True when the alias points elsewhere now."""
        return self.to_version is not None


class Rollback:
    """Moves a stack's aliases back one version, with injected boto3 clients."""

    def __init__(self, *, cloudformation: Any, lambda_client: Any, sfn_client: Any) -> None:
        self._cfn = cloudformation
        self._lambda = lambda_client
        self._sfn = sfn_client

    def plan(self, stack: str) -> list[AliasMove]:
        """What a rollback of ``stack`` would move, without moving anything."""
        moves = []
        for resource_type, alias_arn in self._aliases(stack):
            if resource_type == STATE_MACHINE_ALIAS:
                moves.append(self._plan_state_machine(stack, alias_arn))
            else:
                moves.append(self._plan_lambda(stack, alias_arn))
        if not moves:
            raise RollbackError(stack, "has no aliases; is it a strangler pipeline stack?")
        return moves

    def run(self, stack: str) -> list[AliasMove]:
        """Move every alias of ``stack`` that has an earlier version; returns the moves.

        The state machine alias moves first, so no new execution starts on the release
        being rolled back while its functions move. Raises RollbackError when no alias
        can move or AWS refuses; the message says which aliases had moved by then.
        """
        moves = self.plan(stack)
        if not any(move.moved for move in moves):
            raise RollbackError(
                stack, "every alias is at its first version; nothing to roll back to"
            )
        done: list[AliasMove] = []
        for move in sorted(moves, key=lambda m: m.kind != "state-machine"):
            if move.moved:
                self._apply(stack, move, done)
                done.append(move)
                log.info(
                    "aws_alias_rolled_back",
                    alias=move.alias_arn,
                    from_version=move.from_version,
                    to_version=move.to_version,
                )
        return moves

    def _aliases(self, stack: str) -> Iterator[tuple[str, str]]:
        paginator = self._cfn.get_paginator("list_stack_resources")
        try:
            for page in paginator.paginate(StackName=stack):
                for resource in page["StackResourceSummaries"]:
                    kind = resource["ResourceType"]
                    if kind in (LAMBDA_ALIAS, STATE_MACHINE_ALIAS):
                        yield kind, str(resource["PhysicalResourceId"])
        except (ClientError, BotoCoreError) as exc:
            raise RollbackError(stack, f"cannot list its resources: {exc}") from exc

    def _plan_lambda(self, stack: str, alias_arn: str) -> AliasMove:
        function, alias = _lambda_alias_parts(stack, alias_arn)
        current = str(
            _call(stack, self._lambda.get_alias, FunctionName=function, Name=alias)[
                "FunctionVersion"
            ]
        )
        versions: list[int] = []
        paginator = self._lambda.get_paginator("list_versions_by_function")
        try:
            for page in paginator.paginate(FunctionName=function):
                versions.extend(
                    int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()
                )
        except (ClientError, BotoCoreError) as exc:
            raise RollbackError(stack, f"cannot list versions of {function}: {exc}") from exc
        previous = _previous(versions, current)
        return AliasMove("lambda", alias_arn, current, previous, target=function)

    def _plan_state_machine(self, stack: str, alias_arn: str) -> AliasMove:
        alias = _call(stack, self._sfn.describe_state_machine_alias, stateMachineAliasArn=alias_arn)
        routes = alias.get("routingConfiguration", [])
        if not routes:
            raise RollbackError(stack, f"state machine alias {alias_arn} routes nowhere")
        current_arn = str(max(routes, key=lambda r: r["weight"])["stateMachineVersionArn"])
        machine_arn, current = current_arn.rsplit(":", 1)
        versions: list[int] = []
        token: dict[str, str] = {}
        while True:
            answer = _call(
                stack, self._sfn.list_state_machine_versions, stateMachineArn=machine_arn, **token
            )
            versions.extend(
                int(v["stateMachineVersionArn"].rsplit(":", 1)[1])
                for v in answer.get("stateMachineVersions", [])
            )
            if not answer.get("nextToken"):
                break
            token = {"nextToken": answer["nextToken"]}
        previous = _previous(versions, current)
        return AliasMove("state-machine", alias_arn, current, previous, target=machine_arn)

    def _apply(self, stack: str, move: AliasMove, done: list[AliasMove]) -> None:
        try:
            if move.kind == "state-machine":
                self._sfn.update_state_machine_alias(
                    stateMachineAliasArn=move.alias_arn,
                    routingConfiguration=[
                        {
                            "stateMachineVersionArn": f"{move.target}:{move.to_version}",
                            "weight": 100,
                        }
                    ],
                )
            else:
                function, alias = _lambda_alias_parts(stack, move.alias_arn)
                self._lambda.update_alias(
                    FunctionName=function, Name=alias, FunctionVersion=move.to_version
                )
        except (ClientError, BotoCoreError) as exc:
            moved = ", ".join(m.alias_arn for m in done) or "none"
            raise RollbackError(
                stack, f"could not move {move.alias_arn}: {exc} (already moved: {moved})"
            ) from exc


def _lambda_alias_parts(stack: str, alias_arn: str) -> tuple[str, str]:
    parts = alias_arn.split(":")
    if len(parts) != 8 or parts[5] != "function":
        raise RollbackError(stack, f"{alias_arn!r} is not a Lambda alias ARN")
    return parts[6], parts[7]


def _previous(versions: list[int], current: str) -> str | None:
    earlier = [v for v in versions if v < int(current)]
    return str(max(earlier)) if earlier else None


def _call(stack: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise RollbackError(stack, f"{exc}") from exc
