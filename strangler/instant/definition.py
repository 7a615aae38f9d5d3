"""The shipped pipeline definition, its placeholders, and what each Task state is called.

``order_pipeline.asl.json`` names its Lambda resources with ``${...}`` placeholders, as
CloudFormation's ``DefinitionSubstitutions`` fill them; :func:`substitute` fills them the
same way for the local executor. Pure data; no IO beyond reading the packaged file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFINITION_FILE",
    "FUNCTION_PLACEHOLDERS",
    "STATE_MACHINE_NAME",
    "STEPS",
    "STEP_OF_STATE",
    "definition_text",
    "execution_arn",
    "execution_name",
    "load_definition",
    "local_function_arn",
    "pipeline_input",
    "state_machine_region",
    "substitute",
]

DEFINITION_FILE = "order_pipeline.asl.json"
STATE_MACHINE_NAME = "strangler-order-pipeline"
# Local ARNs use a real-looking region (the executor checks it) and the all-zero account.
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"

#: The pipeline's steps, in the order they run; each is also its handler's name.
STEPS = ("claim", "fraud_scan", "authorize_payment", "fulfill", "release")

#: Placeholder in the definition -> the step (handler) whose Lambda it names.
FUNCTION_PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "ClaimFunctionArn": "claim",
        "FraudScanFunctionArn": "fraud_scan",
        "AuthorizePaymentFunctionArn": "authorize_payment",
        "FulfillFunctionArn": "fulfill",
        "ReleaseFunctionArn": "release",
    }
)

#: Task state name in the definition -> the step it runs.
STEP_OF_STATE: Mapping[str, str] = MappingProxyType(
    {
        "ClaimOrder": "claim",
        "FraudScan": "fraud_scan",
        "AuthorizePayment": "authorize_payment",
        "FulfilOrder": "fulfill",
        "ReleaseToLegacy": "release",
    }
)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_EXECUTION_NAME = 80
_DIGEST_CHARS = 16


def definition_text() -> str:
    """The shipped ASL definition, as text, placeholders unfilled."""
    return resources.files("strangler.instant").joinpath(DEFINITION_FILE).read_text("utf-8")


def load_definition() -> dict[str, Any]:
    """The shipped ASL definition, parsed, placeholders unfilled."""
    definition: dict[str, Any] = json.loads(definition_text())
    return definition


def substitute(definition: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``definition`` with every ``${Name}`` in its strings replaced by ``values``.

    Raises ValueError naming the placeholders ``values`` lacks, so a definition never runs
    with an unresolved resource.
    """
    missing: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            missing.add(name)
            return match.group(0)
        return values[name]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return _PLACEHOLDER.sub(fill, node)
        if isinstance(node, Mapping):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    filled: dict[str, Any] = walk(definition)
    if missing:
        raise ValueError(
            f"no value for placeholder(s) {', '.join(sorted(missing))}; "
            f"pass them in the substitutions (known: {', '.join(sorted(values)) or 'none'})"
        )
    return filled


def local_function_arn(step: str) -> str:
    """The Lambda-shaped ARN the local backend gives a step's handler."""
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:strangler-{step}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives execution ``name`` of a state machine, alias or version.

    Executions started through an alias or a version are named after the state machine
    itself: ``arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME``. Raises ValueError
    for an ARN that is not a state machine's.
    """
    parts = _state_machine_parts(state_machine_arn)
    return ":".join([*parts[:5], "execution", parts[6], name])


def state_machine_region(state_machine_arn: str) -> str:
    """The region of a state machine ARN; raises ValueError for another kind of ARN."""
    return _state_machine_parts(state_machine_arn)[3]


def _state_machine_parts(arn: str) -> list[str]:
    parts = arn.split(":")
    if len(parts) not in (7, 8) or parts[2] != "states" or parts[5] != "stateMachine":
        raise ValueError(
            f"not a state machine ARN: {arn!r}; expected "
            "arn:aws:states:REGION:ACCOUNT:stateMachine:NAME[:ALIAS_OR_VERSION]"
        )
    return parts


@functools.lru_cache(maxsize=4096)  # asked again when the order's execution is forgotten
def execution_name(order_id: str, *, dry_run: bool = False) -> str:
    """The execution name of an order: stable, unique per order and mode, valid for AWS.

    Step Functions allows 1-80 characters and forbids whitespace, brackets, wildcards and
    most punctuation. The readable part keeps ``[A-Za-z0-9_.-]`` of the order id; a hash of
    the full id is appended so ids that differ only in dropped or truncated characters
    still get distinct names. Dry runs get their own prefix, so a shadow run never
    collides with the order's real execution.
    """
    prefix = "dryrun" if dry_run else "order"
    digest = hashlib.sha256(order_id.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    room = MAX_EXECUTION_NAME - len(prefix) - len(digest) - 2
    readable = _NAME_UNSAFE.sub("_", order_id)[:room]
    return f"{prefix}-{readable}-{digest}"


def pipeline_input(order_id: str, *, dry_run: bool) -> dict[str, Any]:
    """The execution input for one order: nothing more than the handlers need.

    The notification's payment data stays out, because execution input is kept in the
    execution history for everyone with read access to see.
    """
    return {"order_id": order_id, "dry_run": dry_run}
