"""Overhead of the local ASL executor: µs per state transition and orders/s.

Runs in-process only (no network), bounded to a few seconds. Prints a table:

- linear pipelines of N Pass states: the cost of one transition is the slope between
  N=1 and N=50 (the fixed cost of starting and ending an execution is shown apart);
- an order-shaped pipeline of 5 states (FraudScan, FraudVerdict, AuthorizePayment,
  PaymentVerdict, FulfilOrder: 3 Tasks, 2 Choices) with no-op handlers, in both Task
  forms (function ARN, lambda:invoke), without and with TimeoutSeconds (``worker``: the
  execution runs on a worker thread so that a watchdog can fail a call at its deadline;
  ``inline``: called in place and judged when it returns), as orders/s from one thread;
- the shipped definition (strangler/instant/order_pipeline.asl.json, every Task with
  TimeoutSeconds) as LocalBackend builds it, with no-op handlers: 10 states on the way
  to Fulfilled (4 Tasks).

Each figure is the median of ROUNDS rounds, as wall-clock and as process CPU time per
state transition. Usage: python bench/executor.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strangler.instant.asl import Execution, LambdaContext, StateMachine
from strangler.instant.definition import (
    FUNCTION_PLACEHOLDERS,
    load_definition,
    local_function_arn,
    pipeline_input,
    substitute,
)

ROUNDS = 7
ROUND_SECONDS = 0.25
REGION_ACCOUNT = "us-east-1:123456789012"
ORDER = {"order_id": "o-1", "dry_run": False, "city": "nyc"}
SHIPPED_STATES = 10  # Prepare ... FulfilOrder, Fulfilled, Done
# What each step of the shipped pipeline answers on the way to Fulfilled.
SHIPPED_ANSWERS = {
    "claim": {"claimed": True},
    "fraud_scan": {"decision": "pass"},
    "authorize_payment": {"decision": "authorized"},
    "fulfill": {"decision": "fulfilled"},
    "release": {"released": True},
}


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


def answering(answer: dict[str, Any]) -> Callable[[Any, LambdaContext], Any]:
    """A no-op handler that returns ``answer``."""

    def handler(_event: Any, _context: LambdaContext) -> dict[str, Any]:
        return answer

    return handler


def shipped_pipeline(mode: str) -> StateMachine:
    """The shipped definition with local ARNs, as LocalBackend builds it, no-op handlers."""
    definition = substitute(
        load_definition(),
        {key: local_function_arn(step) for key, step in FUNCTION_PLACEHOLDERS.items()},
    )
    handlers = {
        local_function_arn(step): answering(answer) for step, answer in SHIPPED_ANSWERS.items()
    }
    return StateMachine(definition, handlers, task_timeouts=mode)


def check_shipped(execution: Execution) -> None:
    """Stop unless the shipped pipeline went the whole way to Fulfilled."""
    entered = sum(event["type"].endswith("StateEntered") for event in execution.history)
    outcome = (execution.output or {}).get("outcome")
    if (entered, outcome) != (SHIPPED_STATES, "fulfilled"):
        raise SystemExit(f"shipped pipeline: {entered} states, outcome {outcome!r}")


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


@dataclass(frozen=True)
class Rate:
    """One measurement: wall-clock and process CPU seconds per execution."""

    wall: float
    cpu: float

    @property
    def per_second(self) -> float:
        return 1.0 / self.wall


def measure(machine: StateMachine, seconds: float, order: Any = None) -> Rate:
    """Run executions from one thread for about ``seconds``; time per execution."""
    order = ORDER if order is None else order
    count = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while True:
        execution = machine.execute(order)
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"benchmark execution failed: {execution.error}: {execution.cause}")
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return Rate((now - started) / count, (time.process_time() - cpu_started) / count)


def median(machine: StateMachine, rounds: int, seconds: float, order: Any = None) -> Rate:
    """The median of ``rounds`` measurements (wall and CPU taken separately)."""
    measure(machine, seconds / 5, order)  # warm up
    rates = [measure(machine, seconds, order) for _ in range(rounds)]
    return Rate(statistics.median(r.wall for r in rates), statistics.median(r.cpu for r in rates))


def row(label: str, per_state: Rate, rate: float | None) -> None:
    """Print one line of the table (µs are per state transition)."""
    orders = "" if rate is None else f"{rate:,.0f}"
    print(f"{label:<68}{per_state.wall * 1e6:>9.1f}{per_state.cpu * 1e6:>9.1f}{orders:>10}")


def main() -> None:
    quick = "--quick" in sys.argv
    rounds, seconds = (3, 0.1) if quick else (ROUNDS, ROUND_SECONDS)
    handlers: dict[str, Callable[[Any, LambdaContext], Any]] = dict.fromkeys(
        ("fraud", "payment", "fulfil"), noop
    )
    short, long = 1, 50
    one = median(StateMachine(pass_chain(short), {}), rounds, seconds)
    fifty = median(StateMachine(pass_chain(long), {}), rounds, seconds)
    slope = Rate((fifty.wall - one.wall) / (long - short), (fifty.cpu - one.cpu) / (long - short))
    fixed = Rate(one.wall - slope.wall, one.cpu - slope.cpu)

    print(f"local ASL executor: one thread, median of {rounds} rounds of {seconds:g} s")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    print(f"{'workload':<68}{'wall µs':>9}{'cpu µs':>9}{'orders/s':>10}")
    print("-" * 96)
    row("Pass chain: one more state (slope from 1 to 50 states)", slope, None)
    row("Pass chain: start + end of an execution (fixed cost)", fixed, None)
    row(
        "Pass chain of 50 states, per state",
        Rate(fifty.wall / long, fifty.cpu / long),
        fifty.per_second,
    )
    variants = [
        (invoke, timeout, mode)
        for invoke in (False, True)
        for timeout, mode in ((False, "worker"), (True, "worker"), (True, "inline"))
    ]
    for invoke, timeout, mode in variants:
        definition = order_pipeline(invoke=invoke, timeout=timeout)
        machine = StateMachine(definition, handlers, task_timeouts=mode)
        rate = median(machine, rounds, seconds)
        label = "order pipeline, 5 states, " + ("lambda:invoke" if invoke else "function ARN")
        if timeout:
            label += f", TimeoutSeconds ({mode})"
        row(label, Rate(rate.wall / 5, rate.cpu / 5), rate.per_second)
    order = pipeline_input("o-1", dry_run=False)
    for mode in ("worker", "inline"):
        shipped = shipped_pipeline(mode)
        check_shipped(shipped.execute(order))
        rate = median(shipped, rounds, seconds, order)
        label = f"shipped pipeline, {SHIPPED_STATES} states, TimeoutSeconds ({mode})"
        per_state = Rate(rate.wall / SHIPPED_STATES, rate.cpu / SHIPPED_STATES)
        row(label, per_state, rate.per_second)
    print()
    print("µs are per state transition; cpu µs is process CPU time (all threads), which")
    print("other load on the machine disturbs less than wall time.")
    print("targets: <= 100 µs per state transition, >= 1,000 orders/s")


if __name__ == "__main__":
    main()
