"""The local ASL executor beside moto's Step Functions interpreter, on one definition.

moto (``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``) runs a
definition with the interpreter it took from LocalStack; by default it runs nothing and
answers canned data. Its Task states call Lambda through moto's Lambda backend, which runs
a deployed zip in a Docker container, so a Python callable cannot be a Task here: the
definition below has only Pass and Choice states, which both can run. Measured per
execution from start to a terminal status, median of ROUNDS, and the history's event
types are compared. Usage: python bench/asl_alternatives.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import boto3
from moto import mock_aws

from strangler.instant.asl import StateMachine

DEFINITION: dict[str, Any] = {
    "StartAt": "Intake",
    "States": {
        "Intake": {
            "Type": "Pass",
            "Result": {"score": 12},
            "ResultPath": "$.fraud",
            "Next": "Scan",
        },
        "Scan": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fraud.score", "NumericLessThan": 50, "Next": "Pay"}],
            "Default": "Reject",
        },
        "Pay": {
            "Type": "Pass",
            "Result": "authorized",
            "ResultPath": "$.payment",
            "Next": "Fulfil",
        },
        "Fulfil": {"Type": "Pass", "Result": "fulfilled", "ResultPath": "$.outcome", "End": True},
        "Reject": {"Type": "Fail", "Error": "Fraud", "Cause": "score too high"},
    },
}
ROLE = "arn:aws:iam::123456789012:role/sfn"


def _local(rounds: int) -> tuple[float, list[str]]:
    machine = StateMachine(DEFINITION, {})
    times, types = [], []
    for n in range(rounds):
        started = time.perf_counter()
        execution = machine.execute({"order_id": f"o-{n}"})
        times.append(time.perf_counter() - started)
        assert execution.status == "SUCCEEDED", execution.error
        types = [event["type"] for event in execution.history]
    return statistics.median(times), types


def _moto(rounds: int) -> tuple[float, list[str]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="bench", definition=json.dumps(DEFINITION), roleArn=ROLE
        )["stateMachineArn"]
        times, types = [], []
        for n in range(rounds):
            started = time.perf_counter()
            execution = sfn.start_execution(
                stateMachineArn=arn, name=f"e-{n}", input=json.dumps({"n": n})
            )
            status = "RUNNING"
            deadline = started + 30
            while status == "RUNNING" and time.perf_counter() < deadline:
                status = sfn.describe_execution(executionArn=execution["executionArn"])["status"]
            times.append(time.perf_counter() - started)
            assert status == "SUCCEEDED", status
            history = sfn.get_execution_history(executionArn=execution["executionArn"])
            types = [event["type"] for event in history["events"]]
    return statistics.median(times), types


def main() -> None:
    """Run both side by side and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=51)
    rounds = parser.parse_args().rounds
    local_s, local_types = _local(rounds)
    moto_s, moto_types = _moto(rounds)
    print(f"{'executor':<34} {'ms/execution':>13} {'history events':>15}")
    print(f"{'strangler.instant.asl':<34} {local_s * 1000:>13.3f} {len(local_types):>15}")
    print(f"{'moto 5 (execute_state_machine)':<34} {moto_s * 1000:>13.3f} {len(moto_types):>15}")
    print(f"ratio moto / local: {moto_s / local_s:.0f}x; medians of {rounds} executions")
    print(f"same event types in the same order: {local_types == moto_types}")
    if local_types != moto_types:
        print(f"  local: {local_types}\n  moto:  {moto_types}")


if __name__ == "__main__":
    main()
