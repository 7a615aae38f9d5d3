"""Create or update the pipeline's stack through a change set (boto3, clients injected).

1. The code bundle is uploaded under a content-addressed key (skipped when it is there).
2. A change set is created (``CREATE`` for a new stack, ``UPDATE`` otherwise) and waited
   for; a change set with no changes is deleted and the deploy reports ``NONE``.
3. The change set is executed and the stack waited for; a failure names the resources
   that failed and why.

The ``ReleaseId`` parameter is a digest of the code, the template and the parameters, so
any change publishes new function versions (the ``live`` aliases move to them) and a
repeated deploy of the same thing changes nothing. botocore errors become DeployError.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from strangler.aws.bundle import Bundle
from strangler.aws.exceptions import DeployError
from strangler.aws.template import build_template, render_template

__all__ = ["DeployParameters", "DeployResult", "Deployer", "validate_stack_name"]

log = structlog.get_logger()

MAX_STACK_NAME = 40  # "<stack>-authorize-payment" must fit Lambda's 64-character names
MAX_TEMPLATE_BODY = 51_200
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_BUSY_SUFFIX = "_IN_PROGRESS"


@dataclass(frozen=True, slots=True)
class DeployParameters:
    """What the stack needs besides its code: where orders come from and where legacy is."""

    order_topic_arn: str
    legacy_url: str
    legacy_token: str | None = field(default=None, repr=False)

    def as_cloudformation(
        self, bundle: Bundle, bucket: str, release_id: str
    ) -> list[dict[str, str]]:
        """The stack parameters, in the API's shape."""
        values = {
            "CodeBucket": bucket,
            "CodeKey": bundle.key,
            "ReleaseId": release_id,
            "OrderTopicArn": self.order_topic_arn,
            "LegacyUrl": self.legacy_url,
            "LegacyToken": self.legacy_token or "",
        }
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@dataclass(frozen=True, slots=True)
class DeployResult:
    """What a deploy did: ``action`` is CREATE, UPDATE, or NONE (nothing had changed)."""

    stack: str
    action: str
    release_id: str
    code_uri: str
    change_set: str | None
    outputs: Mapping[str, str]


def validate_stack_name(stack: str) -> str:
    """Return ``stack`` if CloudFormation and the function names derived from it accept it."""
    if not _STACK_NAME.fullmatch(stack) or len(stack) > MAX_STACK_NAME:
        raise ValueError(
            f"stack name {stack!r} is not usable: use a letter, then letters, digits or "
            f"hyphens, at most {MAX_STACK_NAME} characters (function names add a suffix)"
        )
    return stack


class Deployer:
    """Deploys the template with injected ``cloudformation`` and ``s3`` boto3 clients.

    ``waiter_delay_s`` and ``waiter_max_attempts`` bound each wait (default: poll every
    5 s for up to 30 minutes).
    """

    def __init__(
        self,
        *,
        cloudformation: Any,
        s3: Any,
        waiter_delay_s: int = 5,
        waiter_max_attempts: int = 360,
    ) -> None:
        self._cfn = cloudformation
        self._s3 = s3
        self._waiter_config = {"Delay": waiter_delay_s, "MaxAttempts": waiter_max_attempts}

    def deploy(
        self,
        stack: str,
        bucket: str,
        bundle: Bundle,
        parameters: DeployParameters,
        *,
        template: Mapping[str, Any] | None = None,
    ) -> DeployResult:
        """Upload ``bundle`` to ``bucket`` and create or update ``stack``; idempotent.

        Raises ValueError for an unusable stack name and DeployError when AWS refuses or
        the stack fails (the message names the failed resources).
        """
        validate_stack_name(stack)
        body = render_template(template if template is not None else build_template(), compact=True)
        if len(body) > MAX_TEMPLATE_BODY:
            raise DeployError(stack, f"template is {len(body)} bytes, over {MAX_TEMPLATE_BODY}")
        release_id = _release_id(bundle, body, parameters)
        code_uri = self._upload(stack, bucket, bundle)
        change_type = self._change_type(stack)
        change_set = f"strangler-{release_id}-{int(time.time())}"
        created = self._create_change_set(
            stack,
            ChangeSetName=change_set,
            ChangeSetType=change_type,
            TemplateBody=body,
            Parameters=parameters.as_cloudformation(bundle, bucket, release_id),
            Capabilities=["CAPABILITY_IAM"],
            Description=f"strangler release {release_id}",
        )
        if not created or not self._change_set_ready(stack, change_set):
            log.info("aws_deploy_no_changes", stack=stack, release_id=release_id)
            return DeployResult(stack, "NONE", release_id, code_uri, None, self._outputs(stack))
        self._aws(
            stack,
            "execute the change set",
            self._cfn.execute_change_set,
            StackName=stack,
            ChangeSetName=change_set,
        )
        self._wait_stack(stack, change_type)
        log.info("aws_deployed", stack=stack, action=change_type, release_id=release_id)
        return DeployResult(
            stack, change_type, release_id, code_uri, change_set, self._outputs(stack)
        )

    def _upload(self, stack: str, bucket: str, bundle: Bundle) -> str:
        code_uri = f"s3://{bucket}/{bundle.key}"
        try:
            self._s3.head_object(Bucket=bucket, Key=bundle.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise DeployError(stack, f"cannot read {code_uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(stack, f"cannot reach S3 for {code_uri}: {exc}") from exc
        else:
            return code_uri  # content-addressed: already there means identical
        self._aws(
            stack,
            f"upload {code_uri}",
            self._s3.put_object,
            Bucket=bucket,
            Key=bundle.key,
            Body=bundle.data,
            ContentType="application/zip",
        )
        return code_uri

    def _change_type(self, stack: str) -> str:
        try:
            answer = self._cfn.describe_stacks(StackName=stack)
        except ClientError as exc:
            if "does not exist" in str(exc):
                return "CREATE"
            raise DeployError(stack, f"cannot describe the stack: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(stack, f"cannot reach CloudFormation: {exc}") from exc
        status = str(answer["Stacks"][0]["StackStatus"])
        if status == "REVIEW_IN_PROGRESS":
            return "CREATE"  # an earlier CREATE change set was never executed
        if status == "ROLLBACK_COMPLETE":
            raise DeployError(
                stack,
                "its first creation failed and was rolled back; delete it "
                f"(aws cloudformation delete-stack --stack-name {stack}) and deploy again",
            )
        if status.endswith(_BUSY_SUFFIX):
            raise DeployError(stack, f"is busy ({status}); wait for it to finish and retry")
        return "UPDATE"

    def _create_change_set(self, stack: str, **kwargs: Any) -> bool:
        """Create the change set; False when CloudFormation says there is nothing to change."""
        try:
            self._cfn.create_change_set(StackName=stack, **kwargs)
        except ClientError as exc:
            # Usually an empty change set is created and fails; some endpoints refuse
            # to create it at all.
            if any(text in str(exc) for text in _NO_CHANGES):
                return False
            raise DeployError(stack, f"could not create a change set: {exc}") from exc
        except BotoCoreError as exc:
            raise DeployError(stack, f"could not create a change set: {exc}") from exc
        return True

    def _change_set_ready(self, stack: str, change_set: str) -> bool:
        waiter = self._cfn.get_waiter("change_set_create_complete")
        try:
            waiter.wait(StackName=stack, ChangeSetName=change_set, WaiterConfig=self._waiter_config)
        except WaiterError as exc:
            described = self._aws(
                stack,
                "describe the change set",
                self._cfn.describe_change_set,
                StackName=stack,
                ChangeSetName=change_set,
            )
            reason = str(described.get("StatusReason", ""))
            if described.get("Status") == "FAILED" and any(t in reason for t in _NO_CHANGES):
                self._aws(
                    stack,
                    "delete the empty change set",
                    self._cfn.delete_change_set,
                    StackName=stack,
                    ChangeSetName=change_set,
                )
                return False
            raise DeployError(stack, f"change set {change_set} failed: {reason or exc}") from exc
        return True

    def _wait_stack(self, stack: str, change_type: str) -> None:
        name = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
        try:
            self._cfn.get_waiter(name).wait(StackName=stack, WaiterConfig=self._waiter_config)
        except WaiterError as exc:
            raise DeployError(stack, f"{change_type} failed: {self._failures(stack)}") from exc

    def _failures(self, stack: str) -> str:
        try:
            events = self._cfn.describe_stack_events(StackName=stack)["StackEvents"]
        except (ClientError, BotoCoreError) as exc:
            return f"(could not read the stack events: {exc})"
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
            for e in events
            if str(e.get("ResourceStatus", "")).endswith("_FAILED")
        ]
        return "; ".join(failed[:5]) or "see the stack events in the console"

    def _outputs(self, stack: str) -> dict[str, str]:
        answer = self._aws(stack, "describe the stack", self._cfn.describe_stacks, StackName=stack)
        outputs = answer["Stacks"][0].get("Outputs", [])
        return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs}

    @staticmethod
    def _aws(stack: str, what: str, call: Any, **kwargs: Any) -> Any:
        try:
            return call(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(stack, f"could not {what}: {exc}") from exc


def _release_id(bundle: Bundle, template_body: str, parameters: DeployParameters) -> str:
    digest = hashlib.sha256()
    # The token takes part only through this digest, so a new token publishes new
    # versions (their environment changes) without appearing anywhere.
    for part in (
        bundle.sha256,
        template_body,
        parameters.order_topic_arn,
        parameters.legacy_url,
        parameters.legacy_token or "",
    ):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]
