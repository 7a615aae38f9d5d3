"""The CloudFormation template of the instant pipeline on AWS (plain CloudFormation, not SAM).

Plain CloudFormation so that cfn-lint checks everything, the ASL embedded in the state
machine included (it does not check SAM). Deployment is immutable:

- each Lambda function publishes an ``AWS::Lambda::Version`` per release (the
  ``ReleaseId`` parameter, which ``strangler aws deploy`` derives from the code, the
  template and the parameters) and is reached only through its ``live`` alias;
- the state machine publishes an ``AWS::StepFunctions::StateMachineVersion`` whenever
  its definition changes and is reached only through its ``live`` alias; its Task
  resources are the functions' ``live`` aliases (``DefinitionSubstitutions``);
- replaced versions are retained, so ``strangler aws rollback`` can move the aliases back.

IAM is least privilege: each function may only write its own log group; the state
machine may only invoke the five ``live`` aliases; the dispatcher may only start
executions of the state machine alias (and dead-letter to its own queue). A managed
policy with exactly what the sidecar's StepFunctionsBackend needs is an output.
Pure data: building the template does no IO.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strangler import __version__
from strangler.instant.definition import FUNCTION_PLACEHOLDERS, load_definition

__all__ = ["FUNCTIONS", "LambdaSpec", "build_template", "render_template"]

RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
LOG_RETENTION_DAYS = 30
DLQ_RETENTION_S = 14 * 24 * 3600
ALIAS = "live"


@dataclass(frozen=True, slots=True)
class LambdaSpec:
    """One Lambda function of the stack: logical-id stem, name suffix, handler, timeout."""

    key: str
    suffix: str
    handler: str
    timeout_s: int


def _pascal(step: str) -> str:
    return "".join(part.capitalize() for part in step.split("_"))


def _step_spec(step: str) -> LambdaSpec:
    return LambdaSpec(
        _pascal(step), step.replace("_", "-"), f"strangler.instant.handlers.{step}", 20
    )


#: Every function, keyed by its logical-id stem (``Claim`` -> ClaimFunction, ClaimAlias).
FUNCTIONS: Mapping[str, LambdaSpec] = {
    spec.key: spec
    for spec in (
        *(_step_spec(step) for step in FUNCTION_PLACEHOLDERS.values()),
        LambdaSpec("Dispatcher", "dispatcher", "strangler.instant.dispatcher.dispatch", 30),
    )
}
STEP_FUNCTION_KEYS = tuple(key for key in FUNCTIONS if key != "Dispatcher")


def build_template() -> dict[str, Any]:
    """The whole template as a JSON-ready dict."""
    resources: dict[str, Any] = {}
    for spec in FUNCTIONS.values():
        resources.update(_function_resources(spec))
    resources.update(_state_machine_resources())
    resources.update(_dispatcher_resources())
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler {__version__}: the instant order pipeline "
        "(Step Functions + Lambda), deployed immutably behind `live` aliases",
        "Parameters": _parameters(),
        "Conditions": {
            "HasLegacyToken": {"Fn::Not": [{"Fn::Equals": [{"Ref": "LegacyToken"}, ""]}]}
        },
        "Resources": resources,
        "Outputs": _outputs(),
    }


def render_template(template: Mapping[str, Any] | None = None, *, compact: bool = False) -> str:
    """The template as JSON text: indented for people, or compact for the API."""
    data = build_template() if template is None else template
    if compact:
        return json.dumps(data, separators=(",", ":"), sort_keys=True)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _parameters() -> dict[str, Any]:
    return {
        "CodeBucket": {
            "Type": "String",
            "MinLength": 3,
            "Description": "S3 bucket holding the Lambda code bundle",
        },
        "CodeKey": {
            "Type": "String",
            "MinLength": 1,
            "Description": "S3 key of the Lambda code bundle (zip)",
        },
        "ReleaseId": {
            "Type": "String",
            "MinLength": 1,
            "Description": "Changes with every release; publishes new function versions",
        },
        "OrderTopicArn": {
            "Type": "String",
            "AllowedPattern": "arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+",
            "Description": "SNS topic the order service publishes order notifications to",
        },
        "LegacyUrl": {
            "Type": "String",
            "MinLength": 1,
            "Description": "Base URL of the legacy app's per-order API (STRANGLER_LEGACY_URL)",
        },
        "LegacyToken": {
            "Type": "String",
            "NoEcho": True,
            "Default": "",
            "Description": "Bearer token for the legacy app (STRANGLER_LEGACY_TOKEN), or empty",
        },
    }


def _function_name(spec: LambdaSpec) -> dict[str, Any]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{spec.suffix}"}


def _function_resources(spec: LambdaSpec) -> dict[str, Any]:
    key = spec.key
    environment: dict[str, Any] = {"STRANGLER_LOG_FORMAT": "json"}
    statements = [_allow(["logs:CreateLogStream", "logs:PutLogEvents"], _get_att(f"{key}LogGroup"))]
    if key == "Dispatcher":
        environment["STRANGLER_STATE_MACHINE_ARN"] = {"Ref": "StateMachineAlias"}
        statements.append(_allow(["states:StartExecution"], {"Ref": "StateMachineAlias"}))
        statements.append(_allow(["sqs:SendMessage"], _get_att("DispatcherDeadLetterQueue")))
    else:
        environment["STRANGLER_LEGACY_URL"] = {"Ref": "LegacyUrl"}
        environment["STRANGLER_LEGACY_TOKEN"] = {
            "Fn::If": ["HasLegacyToken", {"Ref": "LegacyToken"}, {"Ref": "AWS::NoValue"}]
        }
    function: dict[str, Any] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": _function_name(spec),
            "Description": f"strangler {spec.suffix}",
            "Runtime": RUNTIME,
            "Architectures": [ARCHITECTURE],
            "Handler": spec.handler,
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
            "Role": _get_att(f"{key}Role"),
            "MemorySize": 256,
            "Timeout": spec.timeout_s,
            "Environment": {"Variables": environment},
            "LoggingConfig": {"LogGroup": {"Ref": f"{key}LogGroup"}},
        },
    }
    if key == "Dispatcher":
        function["Properties"]["DeadLetterConfig"] = {
            "TargetArn": _get_att("DispatcherDeadLetterQueue")
        }
    return {
        f"{key}LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{spec.suffix}"},
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        f"{key}Role": _role("lambda.amazonaws.com", f"{spec.suffix}-least-privilege", statements),
        f"{key}Function": function,
        f"{key}Version": {
            "Type": "AWS::Lambda::Version",
            # A new ReleaseId replaces this resource (publishing a version); the old
            # version is kept for rollback.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "FunctionName": {"Ref": f"{key}Function"},
                "Description": {"Fn::Sub": "release ${ReleaseId}"},
            },
        },
        f"{key}Alias": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": {"Ref": f"{key}Function"},
                "FunctionVersion": _get_att(f"{key}Version", "Version"),
                "Name": ALIAS,
            },
        },
    }


def _state_machine_resources() -> dict[str, Any]:
    aliases = [{"Ref": f"{key}Alias"} for key in STEP_FUNCTION_KEYS]
    return {
        "StateMachineRole": _role(
            "states.amazonaws.com",
            "invoke-live-aliases",
            [_allow(["lambda:InvokeFunction"], aliases)],
        ),
        "StateMachine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": {"Fn::Sub": "${AWS::StackName}-order-pipeline"},
                "StateMachineType": "STANDARD",
                "RoleArn": _get_att("StateMachineRole"),
                "Definition": load_definition(),
                "DefinitionSubstitutions": {
                    placeholder: {"Ref": f"{_pascal(step)}Alias"}
                    for placeholder, step in FUNCTION_PLACEHOLDERS.items()
                },
            },
        },
        "StateMachineVersion": {
            "Type": "AWS::StepFunctions::StateMachineVersion",
            # A changed definition changes the revision id, which replaces this resource
            # (publishing a version); the old version is kept for rollback.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "StateMachineArn": {"Ref": "StateMachine"},
                "StateMachineRevisionId": _get_att("StateMachine", "StateMachineRevisionId"),
                # Constant: only a new revision may publish a version (a new description
                # for an unchanged revision would ask to publish it twice).
                "Description": "the state machine as of its latest revision",
            },
        },
        "StateMachineAlias": {
            "Type": "AWS::StepFunctions::StateMachineAlias",
            "Properties": {
                "Name": ALIAS,
                "Description": "the version orders run on; `strangler aws rollback` moves it",
                "RoutingConfiguration": [
                    {"StateMachineVersionArn": {"Ref": "StateMachineVersion"}, "Weight": 100}
                ],
            },
        },
        "SidecarPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "What the sidecar's stepfunctions backend needs, and no more",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        _allow(["states:StartExecution"], {"Ref": "StateMachineAlias"}),
                        _allow(
                            ["states:DescribeExecution", "states:GetExecutionHistory"],
                            {
                                "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:"
                                "${AWS::AccountId}:execution:${StateMachine.Name}:*"
                            },
                        ),
                    ],
                },
            },
        },
    }


def _dispatcher_resources() -> dict[str, Any]:
    return {
        "DispatcherDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "MessageRetentionPeriod": DLQ_RETENTION_S,
                "SqsManagedSseEnabled": True,
            },
        },
        "DispatcherSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "OrderTopicArn"},
                "Protocol": "lambda",
                "Endpoint": {"Ref": "DispatcherAlias"},
            },
        },
        "DispatcherInvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "DispatcherAlias"},
                "Principal": "sns.amazonaws.com",
                "SourceArn": {"Ref": "OrderTopicArn"},
            },
        },
    }


def _outputs() -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "StateMachineAliasArn": {
            "Description": "Set STRANGLER_STATE_MACHINE_ARN to this",
            "Value": {"Ref": "StateMachineAlias"},
        },
        "StateMachineArn": {"Value": {"Ref": "StateMachine"}},
        "StateMachineVersionArn": {"Value": {"Ref": "StateMachineVersion"}},
        "SidecarPolicyArn": {
            "Description": "Attach to the sidecar's role for the stepfunctions backend",
            "Value": {"Ref": "SidecarPolicy"},
        },
        "DispatcherDeadLetterQueueUrl": {"Value": {"Ref": "DispatcherDeadLetterQueue"}},
    }
    for key in FUNCTIONS:
        outputs[f"{key}AliasArn"] = {"Value": {"Ref": f"{key}Alias"}}
    return outputs


def _role(service: str, policy_name: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if service == "states.amazonaws.com":
        # Step Functions passes the calling account: guards against the confused deputy.
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
            "Policies": [
                {
                    "PolicyName": policy_name,
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _allow(actions: list[str], resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _get_att(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}
