"""Overhead of the local ASL executor: µs per state transition and orders/s.

Runs in-process only (no network), bounded to a few seconds. Prints a table:

- linear pipelines of N Pass states: the cost of one transition is the slope between
  N=1 and N=50 (the fixed cost of starting and ending an execution is shown apart);
- an order-shaped pipeline of 5 states (FraudScan, FraudVerdict, AuthorizePayment,
  PaymentVerdict, FulfilOrder: 3 Tasks, 2 Choices) with no-op handlers, in both Task
  forms (function ARN, lambda:invoke) and with TimeoutSeconds (each Task call handed to
  a worker thread so it can time out), as orders/s from one thread.

Each figure is the median of ROUNDS rounds. Usage: python bench/executor.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from strangler.instant.asl import LambdaContext, StateMachine

ROUNDS = 7
ROUND_SECONDS = 0.25
REGION_ACCOUNT = "us-east-1:123456789012"


def noop(_event: Any, _context: LambdaContext) -> dict[str, str]:
    """A handler that does nothing but answer like the pipeline's steps do."""
    return {"decision": "pass"}


def pass_chain(length: int) -> dict[str, Any]:
    """A machine of ``length`` Pass states in a row."""
    states: dict[str, Any] = {}
    for index in range(length):
        state: dict[str, Any] = {"Type": "Pass"}
        if index == length - 1:
            state["End"] = True
        else:
            state["Next"] = f"P{index + 1}"
        states[f"P{index}"] = state
    return {"StartAt": "P0", "States": states}


def order_pipeline(*, invoke: bool, timeout: bool) -> dict[str, Any]:
    """FraudScan -> FraudVerdict -> AuthorizePayment -> PaymentVerdict -> FulfilOrder."""

    def task(function: str, result_path: str, next_state: str | None) -> dict[str, Any]:
        state: dict[str, Any] = {"Type": "Task", "ResultPath": result_path}
        if invoke:
            state["Resource"] = "arn:aws:states:::lambda:invoke"
            state["Parameters"] = {"FunctionName": function, "Payload.$": "$"}
            state["ResultSelector"] = {"decision.$": "$.Payload.decision"}
        else:
            state["Resource"] = f"arn:aws:lambda:{REGION_ACCOUNT}:function:{function}"
            state["Parameters"] = {"order_id.$": "$.order_id", "dry_run.$": "$.dry_run"}
        if timeout:
            state["TimeoutSeconds"] = 30
        state["Retry"] = [{"ErrorEquals": ["LegacyUnavailable"], "MaxAttempts": 3}]
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Released"}]
        if next_state is None:
            state["End"] = True
        else:
            state["Next"] = next_state
        return state

    def verdict(variable: str, next_state: str) -> dict[str, Any]:
        return {
            "Type": "Choice",
            "Choices": [{"Variable": variable, "StringEquals": "pass", "Next": next_state}],
            "Default": "Released",
        }

    return {
        "StartAt": "FraudScan",
        "States": {
            "FraudScan": task("fraud", "$.fraud", "FraudVerdict"),
            "FraudVerdict": verdict("$.fraud.decision", "AuthorizePayment"),
            "AuthorizePayment": task("payment", "$.payment", "PaymentVerdict"),
            "PaymentVerdict": verdict("$.payment.decision", "FulfilOrder"),
            "FulfilOrder": task("fulfil", "$.fulfilment", None),
            "Released": {"Type": "Pass", "End": True},
        },
    }


def executions_per_second(machine: StateMachine, seconds: float) -> float:
    """How many executions one thread completes per second, over about ``seconds``."""
    order = {"order_id": "o-1", "dry_run": False, "city": "nyc"}
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        execution = machine.execute(order)
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"benchmark execution failed: {execution.error}: {execution.cause}")
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def median_rate(machine: StateMachine, rounds: int, seconds: float) -> float:
    executions_per_second(machine, seconds / 5)  # warm up
    return statistics.median(executions_per_second(machine, seconds) for _ in range(rounds))


def row(label: str, micros: float, rate: float | None) -> None:
    """Print one line of the table."""
    orders = "" if rate is None else f"{rate:.0f}"
    print(f"{label:<58}{micros:>10.1f}{orders:>10}")


def main() -> None:
    quick = "--quick" in sys.argv
    rounds, seconds = (3, 0.1) if quick else (ROUNDS, ROUND_SECONDS)
    handlers: dict[str, Callable[[Any, LambdaContext], Any]] = dict.fromkeys(
        ("fraud", "payment", "fulfil"), noop
    )

    short, long = 1, 50
    rate_short = median_rate(StateMachine(pass_chain(short), {}), rounds, seconds)
    rate_long = median_rate(StateMachine(pass_chain(long), {}), rounds, seconds)
    per_state = (1e6 / rate_long - 1e6 / rate_short) / (long - short)
    fixed = 1e6 / rate_short - per_state

    print(f"local ASL executor, median of {rounds} rounds of {seconds:g} s, one thread")
    print()
    print(f"{'workload':<58}{'µs/state':>10}{'orders/s':>10}")
    print("-" * 78)
    row("Pass chain: one more state (slope from 1 to 50 states)", per_state, None)
    row("Pass chain: start + end of an execution (fixed cost)", fixed, None)
    row("Pass chain of 50 states, whole execution", 1e6 / rate_long / long, rate_long)
    for invoke in (False, True):
        for timeout in (False, True):
            machine = StateMachine(order_pipeline(invoke=invoke, timeout=timeout), handlers)
            rate = median_rate(machine, rounds, seconds)
            form = "lambda:invoke" if invoke else "function ARN"
            label = f"order pipeline, 5 states, {form}" + (", TimeoutSeconds" if timeout else "")
            row(label, 1e6 / rate / 5, rate)
    print()
    print("targets: <= 100 µs per state transition, >= 1,000 orders/s (5-state pipeline)")


if __name__ == "__main__":
    main()
