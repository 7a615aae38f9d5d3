"""Parallel and Map: result order, concurrency bounds, error propagation, history shape."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from strangler.instant.asl import LambdaContext
from tests.unit.asl.support import arn, details, machine, run, types


def branch(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A branch (or item processor) of states chained in the order given."""
    chained: dict[str, Any] = {}
    for index, (name, state) in enumerate(states):
        body = dict(state)
        if body["Type"] not in ("Succeed", "Fail", "Choice"):
            if index + 1 < len(states):
                body["Next"] = states[index + 1][0]
            else:
                body["End"] = True
        chained[name] = body
    return {"StartAt": states[0][0], "States": chained}


def shape(execution: Any) -> list[tuple[int, int, str]]:
    """(id, previousEventId, type) of every event."""
    return [(e["id"], e["previousEventId"], e["type"]) for e in execution.history]


class Gate:
    """A handler that records how many calls overlap and can hold the first ones back."""

    def __init__(self, hold_first: int = 0) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.finished: list[Any] = []
        self.release = threading.Event()
        self.hold_first = hold_first

    def __call__(self, event: Any, _context: LambdaContext) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            held = event in range(self.hold_first)
        if held:
            self.release.wait(timeout=5)
        else:
            time.sleep(0.01)
        with self.lock:
            self.running -= 1
            self.finished.append(event)
            if len(self.finished) >= 2:
                self.release.set()
        return {"item": event}


def parallel_machine(*branches: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state = {"Type": "Parallel", "Branches": list(branches), "Next": "After", **fields}
    return {
        "StartAt": "P",
        "States": {
            "P": state,
            "After": {"Type": "Pass", "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_parallel_results_keep_branch_order() -> None:
    """Branch outputs come back in branch order, whatever order they finish in."""
    gate = Gate(hold_first=1)
    branches = [
        branch((f"B{i}", {"Type": "Task", "Resource": arn("gate"), "InputPath": f"$.v[{i}]"}))
        for i in range(3)
    ]
    execution = run(parallel_machine(*branches), {"v": [0, 1, 2]}, {"gate": gate})
    assert execution.output == [{"item": 0}, {"item": 1}, {"item": 2}]
    assert gate.finished[-1] == 0
    assert gate.most >= 2


def test_parallel_processing_fields() -> None:
    """Parameters feed every branch; ResultSelector and ResultPath shape the list of results."""
    branches = [
        branch(("A", {"Type": "Pass", "InputPath": "$.x"})),
        branch(("B", {"Type": "Pass", "Result": "b"})),
    ]
    definition = parallel_machine(
        *branches,
        Parameters={"x.$": "$.in"},
        ResultSelector={"first.$": "$[0]", "all.$": "$"},
        ResultPath="$.out",
    )
    execution = run(definition, {"in": 5})
    assert execution.output == {"in": 5, "out": {"first": 5, "all": [5, "b"]}}


def test_a_failing_branch_fails_the_parallel_state_with_its_error() -> None:
    """One failing branch fails the state with that branch's error and cause."""
    branches = [
        branch(("Ok", {"Type": "Pass"})),
        branch(("Bad", {"Type": "Fail", "Error": "FailureType", "Cause": "Cause description"})),
    ]
    execution = run(parallel_machine(*branches))
    assert (
        execution.status,
        execution.error,
        execution.cause,
    ) == ("FAILED", "FailureType", "Cause description")
    assert types(execution)[-2] == "ParallelStateFailed"


def test_parallel_catch_history_matches_step_functions() -> None:
    """A caught branch failure records the same events and links as Step Functions."""
    definition = parallel_machine(
        branch(("Branch1", {"Type": "Fail", "Error": "FailureType", "Cause": "Cause description"})),
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    )
    execution = run(definition)
    assert shape(execution) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "ParallelStateEntered"),
        (3, 2, "ParallelStateStarted"),
        (4, 3, "FailStateEntered"),
        (5, 4, "ParallelStateFailed"),
        (6, 5, "ParallelStateExited"),
        (7, 6, "PassStateEntered"),
        (8, 7, "PassStateExited"),
        (9, 8, "ExecutionSucceeded"),
    ]
    assert execution.output == {"Error": "FailureType", "Cause": "Cause description"}


def test_parallel_retry_runs_every_branch_again() -> None:
    """Retry on a Parallel state starts all its branches again."""
    definition = parallel_machine(
        branch(("Branch1", {"Type": "Fail", "Error": "FailureType"})),
        Retry=[{"ErrorEquals": ["FailureType"], "MaxAttempts": 2}],
    )
    execution = run(definition)
    assert types(execution) == [
        "ExecutionStarted",
        "ParallelStateEntered",
        "ParallelStateStarted",
        "FailStateEntered",
        "ParallelStateStarted",
        "FailStateEntered",
        "ParallelStateStarted",
        "FailStateEntered",
        "ParallelStateFailed",
        "ExecutionFailed",
    ]
    assert [
        (e["id"], e["previousEventId"])
        for e in execution.history
        if e["type"] == "ParallelStateStarted"
    ][1:] == [(5, 4), (7, 6)]


def map_machine(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state = {"Type": "Map", "ItemProcessor": processor, "Next": "After", **fields}
    return {
        "StartAt": "M",
        "States": {
            "M": state,
            "After": {"Type": "Pass", "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_map_results_keep_item_order_under_concurrency() -> None:
    """Iteration outputs come back in item order; MaxConcurrency bounds the overlap."""
    gate = Gate(hold_first=1)
    processor = branch(("Work", {"Type": "Task", "Resource": arn("gate")}))
    execution = run(map_machine(processor, MaxConcurrency=3), list(range(8)), {"gate": gate})
    assert [{"item": i} for i in range(8)] == execution.output
    assert 2 <= gate.most <= 3


@pytest.mark.parametrize(
    ("fields", "max_workers", "most"),
    [
        ({"MaxConcurrency": 1}, 8, 1),
        ({}, 1, 1),
        ({"MaxConcurrencyPath": "$$.Execution.Input.c"}, 8, 1),
    ],
    ids=["MaxConcurrency 1", "max_workers 1", "MaxConcurrencyPath"],
)
def test_map_runs_one_at_a_time_when_bounded_to_one(
    fields: dict[str, Any], max_workers: int, most: int
) -> None:
    """A bound of one (from the state or the executor) runs iterations one after another."""
    gate = Gate()
    processor = branch(("Work", {"Type": "Task", "Resource": arn("gate")}))
    definition = map_machine(processor, ItemsPath="$.items", **fields)
    sm = machine(definition, {"gate": gate}, max_workers=max_workers)
    execution = sm.execute({"items": [0, 1, 2], "c": 1})
    assert ("SUCCEEDED", most) == (execution.status, gate.most)
    assert gate.finished == [0, 1, 2]


def test_map_item_selector_sees_index_value_and_input() -> None:
    """ItemSelector builds each iteration's input from $$.Map.Item and the Map's input."""
    selector = {
        "index.$": "$$.Map.Item.Index",
        "value.$": "$$.Map.Item.Value",
        "partner.$": "$.partner",
        "constant": "c",
    }
    processor = branch(("Echo", {"Type": "Pass"}))
    execution = run(
        map_machine(processor, ItemsPath="$.items", ItemSelector=selector, ResultPath="$.out"),
        {"items": ["a", "b"], "partner": "UQS"},
    )
    assert execution.output["out"] == [
        {"index": 0, "value": "a", "partner": "UQS", "constant": "c"},
        {"index": 1, "value": "b", "partner": "UQS", "constant": "c"},
    ]


def test_legacy_iterator_and_parameters() -> None:
    """The legacy Iterator and Parameters fields work like ItemProcessor and ItemSelector."""
    state = {
        "Type": "Map",
        "Iterator": branch(("Echo", {"Type": "Pass"})),
        "Parameters": {"i.$": "$$.Map.Item.Index"},
        "End": True,
    }
    assert run({"StartAt": "M", "States": {"M": state}}, [5, 6]).output == [{"i": 0}, {"i": 1}]


def test_empty_map_succeeds_with_an_empty_list() -> None:
    """A Map over no items succeeds with []."""
    processor = branch(("Echo", {"Type": "Pass"}))
    execution = run(map_machine(processor), [])
    assert execution.output == []
    assert details(execution.history[2]) == {"length": 0}


@pytest.mark.parametrize(
    "items", [{"a": 1}, "text", 5, None], ids=["object", "string", "number", "null"]
)
def test_map_over_a_non_array_is_a_runtime_error(items: Any) -> None:
    """ItemsPath must select an array; anything else fails with States.Runtime."""
    processor = branch(("Echo", {"Type": "Pass"}))
    execution = run(map_machine(processor, ItemsPath="$.items"), {"items": items})
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert execution.cause is not None
    assert "Map state input must be an array" in execution.cause


def test_sequential_map_history_matches_step_functions() -> None:
    """Events and their previousEventId links are those Step Functions records for a Map."""
    processor = branch(("HandleItem", {"Type": "Pass"}))
    definition = {
        "StartAt": "M",
        "States": {
            "M": {"Type": "Map", "ItemProcessor": processor, "MaxConcurrency": 1, "End": True}
        },
    }
    execution = run(definition, [1, "Hello"])
    assert shape(execution) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "MapStateEntered"),
        (3, 2, "MapStateStarted"),
        (4, 3, "MapIterationStarted"),
        (5, 4, "PassStateEntered"),
        (6, 5, "PassStateExited"),
        (7, 6, "MapIterationSucceeded"),
        (8, 6, "MapIterationStarted"),
        (9, 8, "PassStateEntered"),
        (10, 9, "PassStateExited"),
        (11, 10, "MapIterationSucceeded"),
        (12, 10, "MapStateSucceeded"),
        (13, 10, "MapStateExited"),
        (14, 13, "ExecutionSucceeded"),
    ]
    assert details(execution.history[7]) == {"name": "M", "index": 1}
    assert details(execution.history[8])["input"] == '"Hello"'


def test_map_catch_history_matches_step_functions() -> None:
    """A failing iteration fails the Map; a Catch then exits it with the error output."""
    processor = branch(("HandleItemFail", {"Type": "Fail", "Error": "ItemError", "Cause": "bad"}))
    definition = map_machine(processor, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])
    execution = run(definition, [1])
    assert shape(execution) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "MapStateEntered"),
        (3, 2, "MapStateStarted"),
        (4, 3, "MapIterationStarted"),
        (5, 4, "FailStateEntered"),
        (6, 5, "MapIterationFailed"),
        (7, 5, "MapStateFailed"),
        (8, 7, "MapStateExited"),
        (9, 8, "PassStateEntered"),
        (10, 9, "PassStateExited"),
        (11, 10, "ExecutionSucceeded"),
    ]
    assert execution.output == {"Error": "ItemError", "Cause": "bad"}


def test_a_failing_iteration_stops_the_rest() -> None:
    """After an iteration fails, iterations not yet started never start."""
    seen: list[Any] = []

    def work(event: Any, context: LambdaContext) -> Any:
        seen.append(event)
        if event == 1:
            raise ValueError("item 1 is bad")
        return event

    processor = branch(("Work", {"Type": "Task", "Resource": arn("work")}))
    execution = run(map_machine(processor, MaxConcurrency=1), [0, 1, 2, 3], {"work": work})
    assert (execution.status, execution.error, seen) == ("FAILED", "ValueError", [0, 1])


def test_map_retry_restarts_all_iterations() -> None:
    """Retry on a Map state runs every item again."""
    calls: list[Any] = []

    def work(event: Any, context: LambdaContext) -> Any:
        calls.append(event)
        if len(calls) == 2:
            raise ValueError("once")
        return event

    processor = branch(("Work", {"Type": "Task", "Resource": arn("work")}))
    definition = map_machine(
        processor, MaxConcurrency=1, Retry=[{"ErrorEquals": ["ValueError"], "MaxAttempts": 1}]
    )
    execution = run(definition, [0, 1], {"work": work})
    assert (execution.output, calls) == ([0, 1], [0, 1, 0, 1])
    assert types(execution).count("MapStateStarted") == 2


def test_nested_map_and_parallel() -> None:
    """Maps and Parallels nest; outputs keep their shape."""
    inner = branch(("Double", {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"}}))
    outer = branch(("Inner", {"Type": "Map", "ItemProcessor": inner}))
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    branch(("Outer", {"Type": "Map", "ItemProcessor": outer})),
                    branch(("Id", {"Type": "Pass"})),
                ],
                "End": True,
            }
        },
    }
    execution = run(definition, [[1, 2], [3]])
    assert execution.output == [[[{"v": 2}, {"v": 4}], [{"v": 6}]], [[1, 2], [3]]]


def test_a_failing_branch_does_not_wait_for_slow_siblings() -> None:
    """The first failure fails the Parallel at once; a branch still running is left behind."""
    release = threading.Event()

    def slow(_event: Any, _context: LambdaContext) -> Any:
        release.wait(timeout=5)
        return "late"

    def bad(_event: Any, _context: LambdaContext) -> Any:
        raise ValueError("fast failure")

    definition = parallel_machine(
        branch(("Slow", {"Type": "Task", "Resource": arn("slow")}), ("Then", {"Type": "Pass"})),
        branch(("Bad", {"Type": "Task", "Resource": arn("bad")})),
    )
    started = time.monotonic()
    try:
        execution = run(definition, {}, {"slow": slow, "bad": bad})
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert (execution.status, execution.error) == ("FAILED", "ValueError")
    assert elapsed < 2
    assert "PassStateEntered" not in types(execution)
