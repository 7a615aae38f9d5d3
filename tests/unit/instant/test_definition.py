"""The shipped ASL definition, its placeholders, and how executions are named."""

from __future__ import annotations

import re
from typing import Any

import pytest
from statelint.config import Config
from statelint.linter import Linter
from statelint.problem import ProblemType

from strangler.instant.definition import (
    FUNCTION_PLACEHOLDERS,
    MAX_EXECUTION_NAME,
    STEP_OF_STATE,
    execution_arn,
    execution_name,
    load_definition,
    local_function_arn,
    pipeline_input,
    substitute,
)

TRANSIENT = {"LegacyUnavailable", "CircuitOpen", "States.Timeout", "Lambda.ServiceException"}
SFN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")


def _filled() -> dict[str, Any]:
    return substitute(
        load_definition(),
        {
            key: f"arn:aws:lambda:us-east-1:123456789012:function:{step}:live"
            for key, step in FUNCTION_PLACEHOLDERS.items()
        },
    )


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in definition["States"].items() if s["Type"] == "Task"}


def test_statelint_accepts_the_definition_as_deployed() -> None:
    """statelint finds no problem once the placeholders hold Lambda ARNs."""
    assert Linter.validate(_filled()) == []


def test_statelint_accepts_the_shipped_file_apart_from_placeholders() -> None:
    """The shipped file is valid ASL; only its ${...} resources are not URIs yet."""
    assert Linter.validate(load_definition(), Config(ignored_problem_types={ProblemType.URI})) == []


def test_every_placeholder_names_a_task_resource() -> None:
    """The placeholders in the file are exactly the ones the backends and template fill."""
    resources = {task["Resource"] for task in _tasks(load_definition()).values()}
    assert {f"${{{key}}}" for key in FUNCTION_PLACEHOLDERS} == resources


def test_every_task_state_is_a_named_step() -> None:
    """Each Task state maps to a step name, so history can be turned into StepResults."""
    assert set(STEP_OF_STATE) == set(_tasks(load_definition()))


@pytest.mark.parametrize("state", sorted(STEP_OF_STATE), ids=str)
def test_tasks_retry_transient_errors_a_bounded_number_of_times(state: str) -> None:
    """Every task retries legacy outages, timeouts and Lambda hiccups, with backoff and a cap."""
    task = _tasks(load_definition())[state]
    retried = {name for retrier in task["Retry"] for name in retrier["ErrorEquals"]}
    assert retried >= TRANSIENT
    for retrier in task["Retry"]:
        assert 1 <= retrier["MaxAttempts"] <= 6
        assert retrier["BackoffRate"] >= 1.0
        assert retrier["MaxDelaySeconds"] <= 30
    assert task["TimeoutSeconds"] <= 60


@pytest.mark.parametrize("state", sorted(set(STEP_OF_STATE) - {"ReleaseToLegacy"}), ids=str)
def test_failing_steps_fall_back_to_the_batch_jobs(state: str) -> None:
    """Every business step catches States.ALL into ReleaseToLegacy, keeping the cause."""
    catch = _tasks(load_definition())[state]["Catch"]
    assert catch == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.fallback", "Next": "ReleaseToLegacy"}
    ]


def test_release_has_no_catch() -> None:
    """If the hand-back itself fails, the execution fails: that order needs a person."""
    assert "Catch" not in _tasks(load_definition())["ReleaseToLegacy"]


def test_every_outcome_ends_in_succeed() -> None:
    """Each outcome Pass state sets $.outcome and goes to the one Succeed state."""
    states = load_definition()["States"]
    outcomes = {
        state["Result"]: state["Next"]
        for state in states.values()
        if state["Type"] == "Pass" and state.get("ResultPath") == "$.outcome"
    }
    expected = ["fell_back", "fulfilled", "legacy_owned", "payment_declined", "rejected_fraud"]
    assert expected == sorted(outcomes)
    assert {"Done"} == set(outcomes.values())
    assert states["Done"]["Type"] == "Succeed"


def test_substitute_refuses_unfilled_placeholders() -> None:
    """A definition never runs with an unresolved resource: the missing names are listed."""
    with pytest.raises(ValueError, match="ClaimFunctionArn, FraudScanFunctionArn"):
        substitute(load_definition(), {"AuthorizePaymentFunctionArn": "x"})


def test_substitute_leaves_the_original_untouched() -> None:
    """Substitution returns a copy."""
    original = load_definition()
    substitute(original, dict.fromkeys(FUNCTION_PLACEHOLDERS, "arn"))
    assert original["States"]["ClaimOrder"]["Resource"] == "${ClaimFunctionArn}"


@pytest.mark.parametrize(
    "order_id",
    ["o-1", "ord 42/#x", "é-ü-订单", "a" * 128, "a:b;c,d", "{[<>]}"],
    ids=["plain", "spaces-slashes", "non-ascii", "max-length", "punctuation", "brackets"],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_execution_names_follow_step_functions_rules(order_id: str, dry_run: bool) -> None:
    """Names are 1-80 characters of [A-Za-z0-9_.-], stable for the same order and mode."""
    name = execution_name(order_id, dry_run=dry_run)
    assert SFN_NAME.fullmatch(name)
    assert len(name) <= MAX_EXECUTION_NAME
    assert name == execution_name(order_id, dry_run=dry_run)


@pytest.mark.parametrize(
    ("first", "second"),
    [("a/b", "a#b"), ("x" * 100 + "1", "x" * 100 + "2"), ("o-1", "o-1 ")],
    ids=["dropped-characters", "differ-after-truncation", "trailing-space"],
)
def test_distinct_order_ids_never_share_a_name(first: str, second: str) -> None:
    """The hash suffix keeps ids apart that sanitising or truncating would merge."""
    assert execution_name(first) != execution_name(second)


def test_dry_run_and_real_executions_have_distinct_names() -> None:
    """A shadow run never collides with the order's real execution."""
    assert execution_name("o-1") != execution_name("o-1", dry_run=True)


@pytest.mark.parametrize(
    "machine",
    [
        "arn:aws:states:eu-west-1:123456789012:stateMachine:pipe",
        "arn:aws:states:eu-west-1:123456789012:stateMachine:pipe:live",
        "arn:aws:states:eu-west-1:123456789012:stateMachine:pipe:3",
    ],
    ids=["unqualified", "alias", "version"],
)
def test_execution_arn_is_named_after_the_state_machine(machine: str) -> None:
    """Executions through an alias or version are named after the state machine itself."""
    assert execution_arn(machine, "n") == "arn:aws:states:eu-west-1:123456789012:execution:pipe:n"


def test_execution_arn_rejects_other_arns() -> None:
    """A Lambda ARN where a state machine ARN belongs is refused with the expected shape."""
    with pytest.raises(ValueError, match="stateMachine:NAME"):
        execution_arn("arn:aws:lambda:us-east-1:123456789012:function:f", "n")


def test_pipeline_input_carries_no_payment_data() -> None:
    """Execution input holds only what handlers need, never the payment token."""
    assert pipeline_input("o-1", dry_run=True) == {"order_id": "o-1", "dry_run": True}


def test_local_function_arns_look_like_lambda_arns() -> None:
    """Local resources are Lambda-shaped ARNs, distinct per step."""
    assert (
        local_function_arn("claim")
        == "arn:aws:lambda:us-east-1:000000000000:function:strangler-claim"
    )
