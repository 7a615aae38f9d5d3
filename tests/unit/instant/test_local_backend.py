"""LocalBackend: the shipped definition on the local executor, against a fake legacy adapter."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from strangler.exceptions import ConfigurationError
from strangler.instant import local_backend
from strangler.instant.asl import tasks
from strangler.instant.asl.history import NOT_PLAIN
from strangler.instant.backends import instant_backend_from_settings
from strangler.instant.exceptions import ExecutionError
from strangler.instant.local_backend import LocalBackend
from strangler.instant.stepfunctions_backend import StepFunctionsBackend
from strangler.instant.steps import steps_from_history
from strangler.legacy_adapter import (
    CircuitOpen,
    ClaimConflict,
    LegacyClient,
    LegacyUnavailable,
    StepOutcome,
)
from strangler.orders import OrderNotification
from strangler.settings import Settings
from tests.unit.instant.fakes import FakeLegacy


class Sleeper:
    """Records Retry backoffs instead of sleeping."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def _order(order_id: str = "o-1") -> OrderNotification:
    return OrderNotification(order_id=order_id, user_guid="u-1", unit_id="unit-1")


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def legacy() -> FakeLegacy:
    return FakeLegacy()


@pytest.fixture
def backend(legacy: FakeLegacy, sleeper: Sleeper) -> Iterator[LocalBackend]:
    with LocalBackend(legacy, max_workers=2, sleeper=sleeper, rng=random.Random(7)) as local:
        yield local


@pytest.mark.parametrize(
    ("claimable", "decisions", "outcome", "steps"),
    [
        (True, {}, "fulfilled", ["claim", "fraud_scan", "authorize_payment", "fulfill"]),
        (True, {"fraud_scan": "reject"}, "rejected_fraud", ["claim", "fraud_scan"]),
        (
            True,
            {"authorize_payment": "declined"},
            "payment_declined",
            ["claim", "fraud_scan", "authorize_payment"],
        ),
        (False, {}, "legacy_owned", ["claim"]),
    ],
    ids=["fulfilled", "rejected-fraud", "declined", "legacy-owned"],
)
def test_each_business_outcome_ends_successfully(
    sleeper: Sleeper,
    claimable: bool,
    decisions: dict[str, str],
    outcome: str,
    steps: list[str],
) -> None:
    """Every business outcome is a SUCCEEDED execution whose output names it."""
    legacy = FakeLegacy(claimable=claimable, decisions=decisions)
    with LocalBackend(legacy, sleeper=sleeper) as backend:
        result = backend.run(_order())
    assert (result.status, result.outcome) == ("SUCCEEDED", outcome)
    assert [s.step for s in result.steps] == steps
    assert set(result.output or {}) == {
        "order_id",
        "outcome",
        "dry_run",
        "claim",
        "fraud",
        "payment",
        "fulfilment",
        "fallback",
    }
    assert legacy.released == []


def test_output_keeps_every_step_result(backend: LocalBackend) -> None:
    """The output carries each step's result under its key, unrun steps as null."""
    output = backend.run(_order()).output or {}
    assert output["order_id"] == "o-1"
    assert output["claim"]["claimed"] is True
    assert output["fraud"]["decision"] == "pass"
    assert output["payment"]["decision"] == "authorized"
    assert output["fulfilment"]["details"] == {"vouchers": ["V-o-1-1"]}
    assert output["fallback"] is None


@pytest.mark.parametrize(
    "error",
    [LegacyUnavailable("refused"), CircuitOpen(retry_after_s=1.0)],
    ids=["unavailable", "breaker-open"],
)
def test_transient_errors_are_retried_with_backoff(
    legacy: FakeLegacy, backend: LocalBackend, sleeper: Sleeper, error: Exception
) -> None:
    """Two failed fraud scans are retried after backoffs and the order is fulfilled."""
    legacy.fail("fraud_scan", [error, error])
    result = backend.run(_order())
    assert result.outcome == "fulfilled"
    assert len(sleeper.slept) == 2
    assert all(0 <= delay <= 8 for delay in sleeper.slept)
    fraud = result.steps[1]
    assert [e["error"] for e in fraud.payload["attempt_errors"]] == [type(error).__name__] * 2


def test_retries_are_bounded_then_the_order_falls_back(
    legacy: FakeLegacy, backend: LocalBackend, sleeper: Sleeper
) -> None:
    """After the last retry the order is released to the batch jobs with the cause."""
    legacy.fail("fulfill", [LegacyUnavailable("legacy app down")] * 4)
    result = backend.run(_order())
    assert (result.status, result.outcome) == ("SUCCEEDED", "fell_back")
    assert len(sleeper.slept) == 3
    assert legacy.released == [
        ("o-1", "instant pipeline fell back: LegacyUnavailable: legacy app down")
    ]
    assert [(s.step, s.decision) for s in result.steps][-2:] == [
        ("fulfill", None),
        ("release", "released"),
    ]


def test_a_permanent_error_falls_back_without_retrying(
    legacy: FakeLegacy, backend: LocalBackend, sleeper: Sleeper
) -> None:
    """A refusal (409) is not retried: the order goes straight back to the batch jobs."""
    legacy.fail("authorize_payment", [ClaimConflict("o-1", body={"error": "not_claimed"})])
    result = backend.run(_order())
    assert result.outcome == "fell_back"
    assert sleeper.slept == []
    fallback = (result.output or {})["fallback"]
    assert (fallback["error"], fallback["released"]) == ("ClaimConflict", True)


def test_an_unknown_verdict_falls_back(legacy: FakeLegacy, backend: LocalBackend) -> None:
    """A fraud verdict with no branch is handed back rather than guessed at."""
    legacy.decisions["fraud_scan"] = "maybe"
    result = backend.run(_order())
    assert result.outcome == "fell_back"
    assert legacy.released == [
        ("o-1", "instant pipeline fell back: UnknownVerdict: fraud_scan returned decision maybe")
    ]


def test_a_failed_release_fails_the_execution(legacy: FakeLegacy, backend: LocalBackend) -> None:
    """When even the hand-back fails the execution FAILS: that order needs a person."""
    legacy.fail("fraud_scan", [ClaimConflict("o-1", body={"error": "terminal"})])
    legacy.fail("release", [LegacyUnavailable("down")] * 7)
    result = backend.run(_order())
    assert (result.status, result.outcome, result.error) == ("FAILED", None, "LegacyUnavailable")
    assert (result.steps[-1].step, result.steps[-1].error) == ("release", "LegacyUnavailable: down")


def test_dry_run_writes_nothing(legacy: FakeLegacy, backend: LocalBackend) -> None:
    """A dry run passes dry_run to every step and never claims or releases."""
    result = backend.run(_order(), dry_run=True)
    assert (result.outcome, result.dry_run) == ("fulfilled", True)
    assert {s.dry_run for s in result.steps} == {True}
    assert [call[0] for call in legacy.calls] == ["fraud_scan", "authorize_payment", "fulfill"]
    assert {call[2] for call in legacy.calls} == {True}


def test_a_second_run_returns_the_same_execution(legacy: FakeLegacy, backend: LocalBackend) -> None:
    """run() is idempotent per order: the legacy app is called once per step."""
    first, second = backend.run(_order()), backend.run(_order())
    assert first == second
    assert len(legacy.calls) == 4


def test_dry_run_and_real_runs_are_distinct_executions(backend: LocalBackend) -> None:
    """A shadow run of an order does not stand in for its real run, nor the reverse."""
    real, dry = backend.run(_order()), backend.run(_order(), dry_run=True)
    assert real.execution_id != dry.execution_id
    assert backend.get("o-1") == real
    assert backend.get("o-1", dry_run=True) == dry


class _Gate:
    """A legacy fake whose claim blocks until released, to hold an execution running."""

    def __init__(self) -> None:
        self.inner = FakeLegacy()
        self.open = threading.Event()

    def claim(self, order_id: str) -> bool:
        self.open.wait(10)
        return self.inner.claim(order_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_timeout_returns_running_and_a_later_run_joins() -> None:
    """Waiting on an execution started elsewhere ends RUNNING at the timeout; the next
    run() joins the same execution."""
    gate = _Gate()
    with LocalBackend(gate, max_workers=1) as backend:  # type: ignore[arg-type]
        backend.submit(_order())
        running = backend.run(_order(), timeout_s=0.01)
        assert (running.status, running.steps, backend.get("o-1")) == ("RUNNING", (), None)
        gate.open.set()
        done = backend.run(_order(), timeout_s=10)
    assert (done.status, done.execution_id) == ("SUCCEEDED", running.execution_id)
    assert [call[0] for call in gate.inner.calls].count("claim") == 1


class _Threads(FakeLegacy):
    """A legacy fake that notes which thread each call came from."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def claim(self, order_id: str) -> bool:
        self.threads.add(threading.current_thread().name)
        return super().claim(order_id)


def test_run_executes_on_the_calling_thread() -> None:
    """run() hands nothing to another thread: the handlers run on its caller's."""
    legacy = _Threads()
    with LocalBackend(legacy) as backend:
        assert backend.run(_order()).outcome == "fulfilled"
        backend.submit(_order("o-2")).result(timeout=10)
    assert threading.current_thread().name in legacy.threads
    assert len(legacy.threads) == 2  # the submitted one ran on an executor worker


def test_a_legacy_client_slower_than_a_task_timeout_is_refused() -> None:
    """A step's call must end before its Task's TimeoutSeconds: run() waits for it."""
    slow = LegacyClient("http://127.0.0.1:9", connect_timeout=5, read_timeout=25)
    with slow, pytest.raises(ValueError, match=r"add up to 30s.*TimeoutSeconds \(30s\)"):
        LocalBackend(slow)
    with LegacyClient("http://127.0.0.1:9") as default, LocalBackend(default) as backend:
        assert backend.machine is not None


def test_many_orders_run_concurrently(legacy: FakeLegacy) -> None:
    """Submitted orders run on the bounded pool and each gets its own execution."""
    with LocalBackend(legacy, max_workers=4) as backend:
        futures = [backend.submit(_order(f"o-{n}")) for n in range(20)]
        results = [future.result(timeout=10) for future in futures]
    assert {r.outcome for r in results} == {"fulfilled"}
    assert len({r.execution_id for r in results}) == 20


def test_only_the_most_recent_finished_executions_are_kept(legacy: FakeLegacy) -> None:
    """Finished executions beyond max_kept are forgotten, oldest first."""
    with LocalBackend(legacy, max_kept=2) as backend:
        for n in range(3):
            backend.run(_order(f"o-{n}"))
        assert [backend.get(f"o-{n}") is not None for n in range(3)] == [False, True, True]


class _HeldOrder(FakeLegacy):
    """A legacy fake whose claim of one order blocks until released."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.open = threading.Event()

    def claim(self, order_id: str) -> bool:
        if order_id == self.held:
            self.open.wait(10)
        return super().claim(order_id)


def test_a_full_store_forgets_finished_executions_never_running_ones() -> None:
    """Beyond max_kept the least recently used finished records go; a running execution
    stays joinable however old, and a kept record reads back equal to what run() returned."""
    legacy = _HeldOrder("slow")
    with LocalBackend(legacy, max_kept=3) as backend:
        backend.submit(_order("slow"))
        results = [backend.run(_order(f"o-{n}")) for n in range(4)]
        assert [backend.get(f"o-{n}") for n in range(4)] == [None, None, *results[2:]]
        assert backend.run(_order("slow"), timeout_s=0.01).status == "RUNNING"
        legacy.open.set()
        assert backend.run(_order("slow"), timeout_s=10).status == "SUCCEEDED"
    assert [call[1] for call in legacy.calls if call[0] == "claim"].count("slow") == 1


def test_a_broken_executor_is_an_execution_error_and_can_be_retried(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the executor itself raises, run() and submit() give ExecutionError and forget
    the attempt."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("executor bug")

    with monkeypatch.context() as patch:
        patch.setattr(backend.machine, "execute", broken)
        patch.setattr(backend.machine, "start", broken)
        patch.setattr(backend.machine, "start_then", broken)
        with pytest.raises(ExecutionError, match="executor bug"):
            backend.run(_order())
        with pytest.raises(ExecutionError, match="executor bug"):
            backend.submit(_order("o-2")).result(timeout=10)
    assert backend.run(_order()).outcome == "fulfilled"
    assert backend.submit(_order("o-2")).result(timeout=10).outcome == "fulfilled"


@pytest.mark.parametrize(
    ("argument", "value"), [("max_workers", 0), ("max_kept", 0)], ids=["workers", "kept"]
)
def test_bounds_must_be_positive(argument: str, value: int) -> None:
    """A zero-sized pool or record store is refused, naming the argument."""
    with pytest.raises(ValueError, match=argument):
        LocalBackend(FakeLegacy(), **{argument: value})


def test_factory_builds_the_local_backend_by_default() -> None:
    """With the default settings the pipeline runs in-process."""
    backend = instant_backend_from_settings(Settings(), FakeLegacy())
    assert isinstance(backend, LocalBackend)
    backend.close()


def test_factory_builds_the_step_functions_backend() -> None:
    """``stepfunctions`` with an alias ARN gives the AWS backend on that alias."""
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:pipe:live"
    settings = Settings(instant_backend="stepfunctions", state_machine_arn=arn)
    backend = instant_backend_from_settings(settings, FakeLegacy())
    assert isinstance(backend, StepFunctionsBackend)
    assert backend.state_machine_arn == arn


@pytest.mark.parametrize(
    "arn", [None, "arn:aws:lambda:us-east-1:123456789012:function:f"], ids=["missing", "wrong"]
)
def test_factory_refuses_a_missing_or_wrong_arn(arn: str | None) -> None:
    """The stepfunctions backend without a state machine ARN is a configuration error."""
    settings = Settings(instant_backend="stepfunctions", state_machine_arn=arn)
    with pytest.raises(ConfigurationError, match="STRANGLER_STATE_MACHINE_ARN"):
        instant_backend_from_settings(settings, FakeLegacy())


class _FixedJitter(random.Random):
    """Full jitter always draws 0.05: the shipped Retry waits 0.05, 0.1 and 0.2 s."""

    def random(self) -> float:
        return 0.05


class _GatewayDown(FakeLegacy):
    """The payment gateway errs for order o-waits, every time."""

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        if order_id == "o-waits":
            raise LegacyUnavailable("gateway down")
        return super().authorize_payment(order_id, dry_run=dry_run)


def test_begin_parks_a_waiting_execution_and_frees_the_thread() -> None:
    """begin() returns while an execution waits for its Retry; the same thread runs another."""
    legacy = _GatewayDown()
    with LocalBackend(legacy, rng=_FixedJitter(1)) as backend:
        waiting = backend.begin(_order("o-waits"))
        assert not waiting.done()
        other = backend.begin(_order("o-other"))
        assert other.done()
        assert other.result().outcome == "fulfilled"
        result = waiting.result(timeout=10)
        assert backend.begin(_order("o-waits")).result() == result  # joined, not run again
    assert result.outcome == "fell_back"
    payments = [e for e in result.history if e["type"] == "LambdaFunctionScheduled"]
    assert len(payments) == 2 + 4 + 1  # claim, fraud scan, 4 payment attempts, release


def test_a_forgotten_execution_is_not_joined_again(
    legacy: FakeLegacy, backend: LocalBackend
) -> None:
    """After forget() the order's record is gone: a new run calls the legacy app again."""
    backend.run(_order())
    backend.forget("o-1")
    assert backend.get("o-1") is None
    backend.run(_order())
    assert len(legacy.calls) == 8


def test_finished_records_beyond_the_live_bound_are_kept_pickled(
    legacy: FakeLegacy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound on live records the oldest are pickled; they read back equal, and a
    second run joins them without calling the legacy app."""
    monkeypatch.setattr(local_backend, "_MAX_LIVE", 2)
    with LocalBackend(legacy) as backend:
        results = [backend.run(_order(f"o-{n}")) for n in range(5)]
        assert [backend.get(f"o-{n}") for n in range(5)] == results
        assert (backend.run(_order("o-0")), len(legacy.calls)) == (results[0], 20)


@pytest.mark.parametrize(
    "scenario",
    ["fulfilled", "retried", "fell-back", "dry-run"],
)
def test_steps_are_those_of_the_written_history_and_of_encoded_results(
    sleeper: Sleeper, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    """The steps read from the history as recorded (Task results kept as values) are the
    steps of the history written as JSON text, and those of a run whose results were
    encoded and decoded as before: same rows, same times, same payloads; and a step's
    payload shares nothing with the execution's output or its history."""

    def run(copying: bool) -> tuple[Any, ...]:
        legacy = FakeLegacy()
        if scenario == "retried":
            legacy.fail("fraud_scan", [LegacyUnavailable("refused")])
        if scenario == "fell-back":
            legacy.fail("fulfill", [ClaimConflict("o-1", body={"error": "terminal"})])
        if not copying:
            monkeypatch.setattr(tasks, "plain_copy", lambda _value: NOT_PLAIN)
        clock = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n) for n in count())
        with LocalBackend(
            legacy, sleeper=sleeper, clock=lambda: next(clock), rng=random.Random(7)
        ) as local:
            result = local.run(_order(), dry_run=scenario == "dry-run")
        monkeypatch.undo()
        return result, steps_from_history(result.history, order_id="o-1", dry_run=result.dry_run)

    copied, written = run(copying=True)
    encoded, _ = run(copying=False)
    assert copied.steps == written == encoded.steps
    assert len(copied.steps) >= 2
    for step in copied.steps:
        if "details" in step.payload:
            step.payload["details"]["changed"] = True
    assert copied.output == encoded.output
    assert tuple(copied.history) == tuple(encoded.history)
