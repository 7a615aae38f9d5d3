"""The CloudFormation template: valid for cfn-lint, immutable deployment, least privilege."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from cfnlint.api import lint

from strangler.aws.template import FUNCTIONS, build_template, render_template
from strangler.instant.definition import FUNCTION_PLACEHOLDERS, load_definition

STEP_KEYS = ["Claim", "FraudScan", "AuthorizePayment", "Fulfill", "Release"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return build_template()


def _resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def test_cfn_lint_finds_nothing() -> None:
    """cfn-lint (which also checks the embedded ASL) reports no error or warning."""
    assert [str(match) for match in lint(render_template(), regions=["us-east-1"])] == []


def test_template_is_plain_cloudformation(template: dict[str, Any]) -> None:
    """No SAM transform and no SAM resource types: cfn-lint can check all of it."""
    assert "Transform" not in template
    assert not [
        r for r in template["Resources"].values() if r["Type"].startswith("AWS::Serverless")
    ]


def test_rendering_is_stable_json(template: dict[str, Any]) -> None:
    """The rendered text parses back to the template, and renders the same twice."""
    assert template == json.loads(render_template())
    assert render_template(compact=True) == render_template(compact=True)


@pytest.mark.parametrize("key", sorted(FUNCTIONS), ids=str)
def test_each_function_has_a_retained_version_and_a_live_alias(
    template: dict[str, Any], key: str
) -> None:
    """A release publishes a version (kept on replacement) that the live alias points at."""
    resources = template["Resources"]
    version = resources[f"{key}Version"]
    assert (version["DeletionPolicy"], version["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert version["Properties"]["Description"] == {"Fn::Sub": "release ${ReleaseId}"}
    alias = resources[f"{key}Alias"]["Properties"]
    assert ("live", {"Fn::GetAtt": [f"{key}Version", "Version"]}) == (
        alias["Name"],
        alias["FunctionVersion"],
    )


@pytest.mark.parametrize("key", sorted(FUNCTIONS), ids=str)
def test_each_handler_path_resolves_to_a_function(template: dict[str, Any], key: str) -> None:
    """Every Lambda's Handler names a callable that exists in the package."""
    handler = template["Resources"][f"{key}Function"]["Properties"]["Handler"]
    module, name = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


def test_state_machine_tasks_call_the_live_aliases(template: dict[str, Any]) -> None:
    """DefinitionSubstitutions point every placeholder at a function's live alias."""
    machine = template["Resources"]["StateMachine"]["Properties"]
    assert load_definition() == machine["Definition"]
    expected = {
        "ClaimFunctionArn": {"Ref": "ClaimAlias"},
        "FraudScanFunctionArn": {"Ref": "FraudScanAlias"},
        "AuthorizePaymentFunctionArn": {"Ref": "AuthorizePaymentAlias"},
        "FulfillFunctionArn": {"Ref": "FulfillAlias"},
        "ReleaseFunctionArn": {"Ref": "ReleaseAlias"},
    }
    assert expected == machine["DefinitionSubstitutions"]
    assert set(FUNCTION_PLACEHOLDERS) == set(expected)


def test_state_machine_has_a_retained_version_behind_a_live_alias(template: dict[str, Any]) -> None:
    """The state machine publishes a version per revision; its alias routes all traffic to it."""
    resources = template["Resources"]
    version = resources["StateMachineVersion"]
    assert version["UpdateReplacePolicy"] == "Retain"
    assert version["Properties"]["StateMachineRevisionId"] == {
        "Fn::GetAtt": ["StateMachine", "StateMachineRevisionId"]
    }
    alias = resources["StateMachineAlias"]["Properties"]
    assert alias["RoutingConfiguration"] == [
        {"StateMachineVersionArn": {"Ref": "StateMachineVersion"}, "Weight": 100}
    ]


@pytest.mark.parametrize("key", STEP_KEYS, ids=str)
def test_step_functions_may_only_write_their_own_logs(template: dict[str, Any], key: str) -> None:
    """A step Lambda's role allows log writes to its own log group and nothing else."""
    assert [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": [f"{key}LogGroup", "Arn"]},
        }
    ] == _statements(template, f"{key}Role")


def test_state_machine_may_only_invoke_the_live_aliases(template: dict[str, Any]) -> None:
    """The state machine role invokes exactly the five step aliases (not $LATEST, not *)."""
    assert [
        {
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [{"Ref": f"{key}Alias"} for key in STEP_KEYS],
        }
    ] == _statements(template, "StateMachineRole")


def test_dispatcher_may_only_start_executions_of_the_alias(template: dict[str, Any]) -> None:
    """Besides logs and its dead-letter queue, the dispatcher may only start executions."""
    statements = _statements(template, "DispatcherRole")
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            {"Fn::GetAtt": ["DispatcherLogGroup", "Arn"]},
        ),
        (["states:StartExecution"], {"Ref": "StateMachineAlias"}),
        (["sqs:SendMessage"], {"Fn::GetAtt": ["DispatcherDeadLetterQueue", "Arn"]}),
    ]


def test_no_policy_uses_wildcards(template: dict[str, Any]) -> None:
    """No statement in the template allows every action or every resource."""
    statements = []
    for resource in template["Resources"].values():
        properties = resource["Properties"]
        for policy in properties.get("Policies", []):
            statements.extend(policy["PolicyDocument"]["Statement"])
        if "PolicyDocument" in properties:
            statements.extend(properties["PolicyDocument"]["Statement"])
    assert len(statements) == len(FUNCTIONS) + 1 + 2 + 2  # + dispatcher extras + sidecar
    for statement in statements:
        assert "*" not in json.dumps(statement["Action"])
        assert statement["Resource"] != "*"


def test_dispatcher_is_subscribed_through_its_alias(template: dict[str, Any]) -> None:
    """SNS delivers to the dispatcher's live alias, which allows exactly that topic."""
    resources = template["Resources"]
    subscription = resources["DispatcherSubscription"]["Properties"]
    assert (
        subscription["Protocol"],
        subscription["Endpoint"],
        subscription["TopicArn"],
    ) == ("lambda", {"Ref": "DispatcherAlias"}, {"Ref": "OrderTopicArn"})
    permission = resources["DispatcherInvokePermission"]["Properties"]
    assert (
        permission["Principal"],
        permission["SourceArn"],
        permission["FunctionName"],
    ) == ("sns.amazonaws.com", {"Ref": "OrderTopicArn"}, {"Ref": "DispatcherAlias"})
    dispatcher = resources["DispatcherFunction"]["Properties"]
    assert dispatcher["Environment"]["Variables"]["STRANGLER_STATE_MACHINE_ARN"] == {
        "Ref": "StateMachineAlias"
    }
    assert dispatcher["DeadLetterConfig"]["TargetArn"] == {
        "Fn::GetAtt": ["DispatcherDeadLetterQueue", "Arn"]
    }


def test_legacy_token_is_never_echoed(template: dict[str, Any]) -> None:
    """The legacy token parameter is NoEcho and left out of the environment when empty."""
    assert template["Parameters"]["LegacyToken"]["NoEcho"] is True
    variables = template["Resources"]["ClaimFunction"]["Properties"]["Environment"]["Variables"]
    assert (variables["STRANGLER_LEGACY_TOKEN"]) == {
        "Fn::If": ["HasLegacyToken", {"Ref": "LegacyToken"}, {"Ref": "AWS::NoValue"}]
    }


def test_outputs_name_what_the_sidecar_needs(template: dict[str, Any]) -> None:
    """The alias ARN to configure and the managed policy to attach are outputs."""
    assert template["Outputs"]["StateMachineAliasArn"]["Value"] == {"Ref": "StateMachineAlias"}
    assert template["Outputs"]["SidecarPolicyArn"]["Value"] == {"Ref": "SidecarPolicy"}
