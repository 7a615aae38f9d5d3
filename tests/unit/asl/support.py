"""Helpers for the executor's conformance tests: a fake clock, tiny machines, event access."""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from strangler.instant.asl import Execution, LambdaContext, StateMachine

START = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
ACCOUNT = "123456789012"


def arn(function: str) -> str:
    """The Lambda ARN of a test function."""
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"


class FakeClock:
    """A clock that only moves when the executor sleeps (or a test says so)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def machine(
    definition: Mapping[str, Any],
    resources: Mapping[str, Callable[[Any, LambdaContext], Any]] | None = None,
    *,
    clock: FakeClock | None = None,
    seed: int = 7,
    **options: Any,
) -> StateMachine:
    """A StateMachine on a fake clock and a seeded random source."""
    clock = clock or FakeClock()
    return StateMachine(
        definition,
        resources or {},
        clock=clock,
        sleeper=clock.sleep,
        rng=random.Random(seed),
        **options,
    )


def run(
    definition: Mapping[str, Any],
    value: Any = None,
    resources: Mapping[str, Callable[[Any, LambdaContext], Any]] | None = None,
    **options: Any,
) -> Execution:
    """Build a machine and run one execution of it."""
    return machine(definition, resources, **options).execute({} if value is None else value)


def single(state: Mapping[str, Any], name: str = "S") -> dict[str, Any]:
    """A machine of one state that ends the execution."""
    body = dict(state)
    if body.get("Type") not in ("Choice", "Succeed", "Fail"):
        body.setdefault("End", True)
    return {"StartAt": name, "States": {name: body}}


def types(execution: Execution) -> list[str]:
    """The event types of an execution's history, in order."""
    return [event["type"] for event in execution.history]


def details(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``...EventDetails`` member of an event (empty when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails"):
            return dict(value)
    return {}


def events_of(execution: Execution, kind: str) -> list[dict[str, Any]]:
    """The details of every event of one type."""
    return [details(event) for event in execution.history if event["type"] == kind]


def cause_json(execution: Execution) -> dict[str, Any]:
    """The execution's cause, decoded (Lambda-style causes are JSON)."""
    assert execution.cause is not None
    decoded: dict[str, Any] = json.loads(execution.cause)
    return decoded


def left_to_the_collector(action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``action()``'s result, and the types of the objects it left in reference cycles
    (garbage only the cyclic collector frees), sorted and without repeats."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = action()
        gc.collect()
        found = sorted({type(o).__name__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return result, found
