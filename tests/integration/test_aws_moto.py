"""The AWS path against moto (and botocore's Stubber where moto lacks an API).

moto runs the API calls (S3, CloudFormation change sets, Lambda, Step Functions) in
process. It does not execute state machines (its executions stay RUNNING until stopped),
does not start executions through aliases, and its CloudFormation knows neither Lambda
versions/aliases nor state-machine versions/aliases: the full template is checked by
cfn-lint (tests/unit/aws), and here the deploy flow runs on a reduced template of the
resource types moto implements.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from botocore.stub import Stubber
from moto import mock_aws

from strangler.aws.bundle import Bundle, build_bundle
from strangler.aws.deploy import Deployer, DeployParameters
from strangler.aws.exceptions import DeployError, RollbackError
from strangler.aws.rollback import Rollback
from strangler.instant.definition import (
    FUNCTION_PLACEHOLDERS,
    definition_text,
    execution_name,
    load_definition,
    substitute,
)
from strangler.instant.dispatcher import NotificationDispatcher
from strangler.instant.exceptions import DispatchError, StepFunctionsError
from strangler.instant.stepfunctions_backend import StepFunctionsBackend
from strangler.orders import OrderNotification

REGION = "us-east-1"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parent.parent / "events"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:orders"
PARAMETERS = DeployParameters(order_topic_arn=TOPIC, legacy_url="http://legacy.internal:8001")
STACK_PARAMETERS = (
    "CodeBucket",
    "CodeKey",
    "ReleaseId",
    "OrderTopicArn",
    "LegacyUrl",
    "LegacyToken",
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every boto3 client talks to moto, with fake credentials (never real ones)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return build_bundle(vendor=None)


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def _role(service: str) -> str:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    role = _client("iam").create_role(
        RoleName=service.split(".", maxsplit=1)[0], AssumeRolePolicyDocument=json.dumps(document)
    )
    return str(role["Role"]["Arn"])


def _state_machine() -> str:
    """The shipped definition as a state machine in moto; returns its (unqualified) ARN."""
    filled = substitute(
        load_definition(),
        {
            key: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:s-{step}:live"
            for key, step in FUNCTION_PLACEHOLDERS.items()
        },
    )
    answer = _client("stepfunctions").create_state_machine(
        name="strangler-order-pipeline",
        definition=json.dumps(filled),
        roleArn=_role("states.amazonaws.com"),
    )
    return str(answer["stateMachineArn"])


def _moto_template() -> dict[str, Any]:
    """The stack's core in resource types moto implements: a function and the state machine."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {name: {"Type": "String", "Default": ""} for name in STACK_PARAMETERS},
        "Resources": {
            "ClaimRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": trust},
            },
            "ClaimFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.11",
                    "Handler": "strangler.instant.handlers.claim",
                    "Role": {"Fn::GetAtt": ["ClaimRole", "Arn"]},
                    "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                    "Environment": {"Variables": {"STRANGLER_LEGACY_URL": {"Ref": "LegacyUrl"}}},
                },
            },
            "StateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "strangler-order-pipeline",
                    "RoleArn": {"Fn::GetAtt": ["ClaimRole", "Arn"]},
                    "DefinitionString": {
                        "Fn::Sub": [
                            definition_text(),
                            {
                                key: {"Fn::GetAtt": ["ClaimFunction", "Arn"]}
                                for key in FUNCTION_PLACEHOLDERS
                            },
                        ]
                    },
                },
            },
        },
    }


# Deploy


def test_deploy_creates_then_updates_then_changes_nothing(aws: None, bundle: Bundle) -> None:
    """A first deploy creates the stack, a changed one updates it, a repeated one is a no-op."""
    _client("s3").create_bucket(Bucket="code")
    deployer = Deployer(
        cloudformation=_client("cloudformation"), s3=_client("s3"), waiter_delay_s=1
    )
    created = deployer.deploy(
        "strangler-test", "code", bundle, PARAMETERS, template=_moto_template()
    )
    repeated = deployer.deploy(
        "strangler-test", "code", bundle, PARAMETERS, template=_moto_template()
    )
    moved = DeployParameters(order_topic_arn=TOPIC, legacy_url="http://legacy-2.internal:8001")
    updated = deployer.deploy("strangler-test", "code", bundle, moved, template=_moto_template())
    assert [r.action for r in (created, repeated, updated)] == ["CREATE", "NONE", "UPDATE"]
    assert created.release_id == repeated.release_id != updated.release_id
    assert f"s3://code/{bundle.key}" == created.code_uri
    (machine,) = _client("stepfunctions").list_state_machines()["stateMachines"]
    definition = json.loads(
        _client("stepfunctions").describe_state_machine(stateMachineArn=machine["stateMachineArn"])[
            "definition"
        ]
    )
    claim = definition["States"]["ClaimOrder"]["Resource"]
    assert claim.startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:")
    (function,) = _client("lambda").list_functions()["Functions"]
    assert len(bundle.data) == function["CodeSize"]
    assert function["Environment"]["Variables"] == {
        "STRANGLER_LEGACY_URL": "http://legacy-2.internal:8001"
    }


def test_deploy_uploads_a_bundle_once(aws: None, bundle: Bundle) -> None:
    """The bundle's key is its content hash: a second deploy does not upload it again."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="code")
    uploads: list[str] = []
    s3.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: uploads.append(params["url_path"])
    )
    deployer = Deployer(cloudformation=_client("cloudformation"), s3=s3, waiter_delay_s=1)
    for _ in range(2):
        deployer.deploy("strangler-test", "code", bundle, PARAMETERS, template=_moto_template())
    assert [path.endswith(bundle.key) for path in uploads] == [True]


def test_deploy_to_a_missing_bucket_is_a_deploy_error(aws: None, bundle: Bundle) -> None:
    """An S3 refusal becomes a DeployError naming the stack and the S3 location."""
    deployer = Deployer(cloudformation=_client("cloudformation"), s3=_client("s3"))
    with pytest.raises(DeployError) as raised:
        deployer.deploy("strangler-test", "no-such-bucket", bundle, PARAMETERS)
    assert raised.value.stack == "strangler-test"
    assert "s3://no-such-bucket/" in str(raised.value)
    assert isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    ("status", "advice"),
    [("ROLLBACK_COMPLETE", "delete-stack"), ("UPDATE_IN_PROGRESS", "is busy")],
    ids=["failed-create", "busy"],
)
def test_deploy_refuses_a_stack_it_cannot_change(bundle: Bundle, status: str, advice: str) -> None:
    """A stack whose creation failed, or that is busy, is refused with what to do about it."""
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cloudformation) as cfn_stub, Stubber(s3) as s3_stub:
        s3_stub.add_response("head_object", {})
        cfn_stub.add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": "s", "CreationTime": "2025-01-01", "StackStatus": status}]},
        )
        with pytest.raises(DeployError, match=advice):
            Deployer(cloudformation=cloudformation, s3=s3).deploy("s", "code", bundle, PARAMETERS)


@pytest.mark.parametrize(
    "stack",
    ["1stack", "has space", "under_score", "x" * 41],
    ids=["digit-first", "space", "underscore", "too-long"],
)
def test_deploy_refuses_unusable_stack_names(bundle: Bundle, stack: str) -> None:
    """A stack name CloudFormation or Lambda would refuse is a ValueError saying the rule."""
    with pytest.raises(ValueError, match="at most 40 characters"):
        Deployer(cloudformation=None, s3=None).deploy(stack, "code", bundle, PARAMETERS)


# Executions through the StepFunctionsBackend


def test_backend_starts_and_describes_an_execution(aws: None) -> None:
    """A run starts the order-named execution and reports it (moto leaves it RUNNING)."""
    machine = _state_machine()
    backend = StepFunctionsBackend(machine, sfn_client=_client("stepfunctions"))
    order = OrderNotification(order_id="ord-1", user_guid="u", unit_id="unit")
    result = backend.run(order, timeout_s=0)
    name = execution_name("ord-1")
    assert ("RUNNING", f"{machine.replace('stateMachine', 'execution')}:{name}") == (
        result.status,
        result.execution_id,
    )
    described = _client("stepfunctions").describe_execution(executionArn=result.execution_id)
    assert json.loads(described["input"]) == {"order_id": "ord-1", "dry_run": False}


def test_a_second_run_for_the_same_order_attaches(aws: None) -> None:
    """Running an order again gives its execution, running or ended: never a second one."""
    machine = _state_machine()
    sfn = _client("stepfunctions")
    backend = StepFunctionsBackend(machine, sfn_client=sfn)
    order = OrderNotification(order_id="ord-1", user_guid="u", unit_id="unit")
    first = backend.run(order, timeout_s=0)
    again = backend.run(order, timeout_s=0)  # same name and input while running: same execution
    sfn.stop_execution(executionArn=first.execution_id)
    after_end = backend.run(order, timeout_s=0)  # AWS refuses the name now: attach
    assert first.execution_id == again.execution_id == after_end.execution_id
    assert after_end.status == "ABORTED"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1


def test_dry_runs_are_separate_executions(aws: None) -> None:
    """A shadow (dry-run) execution of an order does not collide with its real one."""
    machine = _state_machine()
    backend = StepFunctionsBackend(machine, sfn_client=_client("stepfunctions"))
    order = OrderNotification(order_id="ord-1", user_guid="u", unit_id="unit")
    real, dry = backend.run(order, timeout_s=0), backend.run(order, dry_run=True, timeout_s=0)
    assert real.execution_id != dry.execution_id
    assert (real.dry_run, dry.dry_run) == (False, True)


def test_unknown_state_machine_is_a_step_functions_error(aws: None) -> None:
    """moto's refusal reaches the caller as StepFunctionsError, never as botocore's error."""
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing:live"
    backend = StepFunctionsBackend(missing, sfn_client=_client("stepfunctions"))
    with pytest.raises(StepFunctionsError) as raised:
        backend.run(OrderNotification(order_id="o", user_guid="u", unit_id="x"), timeout_s=0)
    assert not isinstance(raised.value, ClientError | BotoCoreError)
    assert raised.value.operation == "StartExecution"


# The dispatcher Lambda


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_dispatcher_starts_one_execution_per_notification(aws: None) -> None:
    """An SNS event's order notification starts that order's execution."""
    machine = _state_machine()
    sfn = _client("stepfunctions")
    answer = NotificationDispatcher(machine, sfn)(_event("sns_order_notification.json"), None)
    assert answer == {"started": ["ord-1001"], "existing": []}
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert execution_name("ord-1001") == execution["name"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert "payment_token" not in described["input"]


def test_redelivered_notification_is_idempotent(aws: None) -> None:
    """SNS delivering the same message after the execution ended starts nothing new."""
    machine = _state_machine()
    sfn = _client("stepfunctions")
    dispatcher = NotificationDispatcher(machine, sfn)
    dispatcher(_event("sns_order_notification.json"), None)
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    again = dispatcher(_event("sns_order_notification.json"), None)
    assert again == {"started": [], "existing": ["ord-1001"]}
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1


def test_invalid_notifications_are_reported_after_the_valid_ones_start(aws: None) -> None:
    """Bad records raise DispatchError naming each message; the good ones were started."""
    machine = _state_machine()
    sfn = _client("stepfunctions")
    with pytest.raises(DispatchError) as raised:
        NotificationDispatcher(machine, sfn)(_event("sns_order_notifications_mixed.json"), None)
    failures = raised.value.failures
    assert sorted(failures) == [
        "0b1c2d3e-0000-4000-8000-000000000002",
        "0b1c2d3e-0000-4000-8000-000000000003",
    ]
    assert "user_guid: is required" in failures["0b1c2d3e-0000-4000-8000-000000000002"]
    assert "not valid JSON" in failures["0b1c2d3e-0000-4000-8000-000000000003"]
    started = {e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    assert {execution_name("ord-1001"), execution_name("ord-1002")} == started


@pytest.mark.parametrize(
    "event",
    [{}, {"Records": "nope"}, {"Records": [{"Sns": {"MessageId": "m-1"}}]}],
    ids=["no-records", "records-not-list", "no-message"],
)
def test_events_that_are_not_sns_notifications_are_refused(aws: None, event: Any) -> None:
    """An event without SNS notification records is refused, not silently ignored."""
    with pytest.raises(DispatchError):
        NotificationDispatcher(_state_machine(), _client("stepfunctions"))(event, None)


def test_dispatcher_surfaces_aws_failures_translated(aws: None) -> None:
    """When Step Functions refuses, the dispatcher raises StepFunctionsError so Lambda retries."""
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing"
    with pytest.raises(StepFunctionsError):
        NotificationDispatcher(missing, _client("stepfunctions"))(
            _event("sns_order_notification.json"), None
        )


# Rollback (Lambda in moto; CloudFormation and Step Functions versions stubbed)


def _functions_with_versions(names: tuple[str, ...], versions: int) -> list[str]:
    """Functions with ``versions`` published versions each, ``live`` on the last; alias ARNs."""
    lam = _client("lambda")
    role = _role("lambda.amazonaws.com")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("strangler/__init__.py", "")
    code = archive.getvalue()
    aliases = []
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="strangler.instant.handlers.claim",
            Code={"ZipFile": code},
        )
        for number in range(1, versions + 1):
            lam.update_function_configuration(FunctionName=name, Description=f"release {number}")
            lam.publish_version(FunctionName=name)
        alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion=str(versions))
        aliases.append(str(alias["AliasArn"]))
    return aliases


SM = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:s-order-pipeline"


def _stubbed(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def test_rollback_moves_every_alias_back_one_version(aws: None) -> None:
    """Lambda aliases go to the previous published version, the state machine alias too."""
    claim, fraud = _functions_with_versions(("s-claim", "s-fraud-scan"), 3)
    cfn, sfn = _stubbed("cloudformation"), _stubbed("stepfunctions")
    resources = [
        {
            "LogicalResourceId": "ClaimAlias",
            "PhysicalResourceId": claim,
            "ResourceType": "AWS::Lambda::Alias",
        },
        {
            "LogicalResourceId": "FraudScanAlias",
            "PhysicalResourceId": fraud,
            "ResourceType": "AWS::Lambda::Alias",
        },
        {
            "LogicalResourceId": "StateMachineAlias",
            "PhysicalResourceId": f"{SM}:live",
            "ResourceType": "AWS::StepFunctions::StateMachineAlias",
        },
    ]
    with Stubber(cfn) as cfn_stub, Stubber(sfn) as sfn_stub:
        for summary in resources:
            summary.update(ResourceStatus="UPDATE_COMPLETE", LastUpdatedTimestamp="2025-01-01")
        cfn_stub.add_response("list_stack_resources", {"StackResourceSummaries": resources})
        sfn_stub.add_response(
            "describe_state_machine_alias",
            {
                "stateMachineAliasArn": f"{SM}:live",
                "routingConfiguration": [{"stateMachineVersionArn": f"{SM}:2", "weight": 100}],
            },
            {"stateMachineAliasArn": f"{SM}:live"},
        )
        sfn_stub.add_response(
            "list_state_machine_versions",
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": f"{SM}:{n}", "creationDate": "2025-01-01"}
                    for n in (1, 2)
                ]
            },
            {"stateMachineArn": SM},
        )
        sfn_stub.add_response(
            "update_state_machine_alias",
            {"updateDate": "2025-01-01"},
            {
                "stateMachineAliasArn": f"{SM}:live",
                "routingConfiguration": [{"stateMachineVersionArn": f"{SM}:1", "weight": 100}],
            },
        )
        moves = Rollback(cloudformation=cfn, lambda_client=_client("lambda"), sfn_client=sfn).run(
            "s"
        )
    assert [(m.kind, m.from_version, m.to_version) for m in moves] == [
        ("lambda", "3", "2"),
        ("lambda", "3", "2"),
        ("state-machine", "2", "1"),
    ]
    lam = _client("lambda")
    assert [
        lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
        for name in ("s-claim", "s-fraud-scan")
    ] == ["2", "2"]


def test_rollback_with_nothing_earlier_moves_nothing(aws: None) -> None:
    """With every alias at its first version, rollback refuses and moves nothing."""
    (claim,) = _functions_with_versions(("s-claim",), 1)
    cfn = _stubbed("cloudformation")
    with Stubber(cfn) as cfn_stub:
        summary = {
            "LogicalResourceId": "ClaimAlias",
            "PhysicalResourceId": claim,
            "ResourceType": "AWS::Lambda::Alias",
            "ResourceStatus": "CREATE_COMPLETE",
            "LastUpdatedTimestamp": "2025-01-01",
        }
        cfn_stub.add_response("list_stack_resources", {"StackResourceSummaries": [summary]})
        rollback = Rollback(
            cloudformation=cfn,
            lambda_client=_client("lambda"),
            sfn_client=_stubbed("stepfunctions"),
        )
        with pytest.raises(RollbackError, match="nothing to roll back to"):
            rollback.run("s")
    assert (
        _client("lambda").get_alias(FunctionName="s-claim", Name="live")["FunctionVersion"] == "1"
    )


def test_rollback_of_an_unknown_stack_is_a_rollback_error(aws: None) -> None:
    """A stack CloudFormation does not know is reported as such, translated."""
    rollback = Rollback(
        cloudformation=_client("cloudformation"),
        lambda_client=_client("lambda"),
        sfn_client=_client("stepfunctions"),
    )
    with pytest.raises(RollbackError) as raised:
        rollback.plan("no-such-stack")
    assert isinstance(raised.value.__cause__, ClientError)
