"""The router: intake, one pinned decision per order, every path and every outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from strangler.instant.exceptions import ExecutionError
from strangler.ledger import LeaseLost, SqlLedger
from strangler.legacy_adapter.exceptions import ClaimConflict, LegacyRejected, LegacyUnavailable
from strangler.orders import Route
from strangler.routing.router import Disposition, Lease, RetryPolicy, Router
from tests.unit.ledger.support import Clock, make_order
from tests.unit.routing.fakes import T_RUN, FakeFlags, FakeInstant, FakeLegacy, execution

OWNER = "test-worker"


@pytest.fixture
def flags() -> FakeFlags:
    return FakeFlags()


@pytest.fixture
def legacy() -> FakeLegacy:
    return FakeLegacy()


@pytest.fixture
def instant() -> FakeInstant:
    return FakeInstant()


@pytest.fixture
def router(
    ledger: SqlLedger, flags: FakeFlags, legacy: FakeLegacy, instant: FakeInstant, clock: Clock
) -> Router:
    retry = RetryPolicy(max_attempts=3, release_attempts=2, base_delay_s=0.0, jitter=0.0)
    return Router(ledger, flags, legacy, instant, retry=retry, clock=clock)


def process(router: Router, ledger: SqlLedger, clock: Clock) -> Disposition:
    """Do what a dispatcher worker does for the one due order: claim, process, release."""
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    disposition = router.process(order, Lease(order.order_id, OWNER))
    if disposition.released:
        return disposition
    ledger.release_lease(
        order.order_id,
        OWNER,
        done=disposition.done,
        retry_at=clock() + timedelta(seconds=disposition.retry_in_s),
        error=disposition.error,
    )
    return disposition


def story(ledger: SqlLedger, order_id: str = "o-1") -> dict[str, Any]:
    found = ledger.story(order_id)
    assert found is not None
    return found


# -- intake ----------------------------------------------------------------------------------------


def test_intake_writes_the_order_and_wakes_the_dispatcher(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """Intake writes the row, wakes the dispatcher once, and does not process the order."""
    wakes: list[str] = []
    router.on_intake = wakes.append
    result = router.intake(make_order("o-1"), source="api")
    assert (result.new, result.order_id) == (True, "o-1")
    assert (story(ledger)["status"], wakes, sum(instant.runs.values())) == ("received", ["o-1"], 0)


def test_a_duplicate_intake_changes_nothing(router: Router, ledger: SqlLedger) -> None:
    """A duplicate is reported as not new and does not wake the dispatcher again."""
    wakes: list[str] = []
    router.on_intake = wakes.append
    router.intake(make_order("o-1"), source="sns")
    result = router.intake(make_order("o-1"), source="sns")
    assert (result.new, len(wakes), ledger.counts().total) == (False, 1, 1)


def test_rejected_notifications_are_kept(router: Router, ledger: SqlLedger) -> None:
    """A notification that failed validation is kept in the ledger with its reason."""
    router.reject(b'{"order_id": ""}', reason="order_id: must not be empty", source="api")
    assert ledger.counts().rejected == 1


# -- the legacy path -------------------------------------------------------------------------------


def test_legacy_orders_are_left_to_the_batch_jobs(
    router: Router, ledger: SqlLedger, flags: FakeFlags, instant: FakeInstant, clock: Clock
) -> None:
    """A legacy-path order is routed and left for the follower; nothing runs here."""
    flags.path = Route.LEGACY
    router.intake(make_order("o-1"), source="api")
    assert process(router, ledger, clock).done is True
    assert (story(ledger)["status"], story(ledger)["decision"]["path"]) == ("routed", "legacy")
    assert (sum(instant.runs.values()), ledger.followed_open(["o-1"])) == (0, {"o-1"})


def test_a_legacy_decision_gives_the_lease_up_with_it(
    router: Router, ledger: SqlLedger, flags: FakeFlags
) -> None:
    """Routing to legacy releases the lease in the pinning transaction: nothing is left due."""
    flags.path = Route.LEGACY
    router.intake(make_order("o-1"), source="api")
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    lease = Lease(order.order_id, OWNER)
    disposition = router.process(order, lease)
    assert (disposition.done, disposition.released, lease.released.is_set()) == (True, True, True)
    held = ledger.renew_leases(OWNER, ["o-1"], lease_seconds=30)
    assert (ledger.counts().dispatch_queue, held) == (0, set())


def test_an_instant_order_keeps_its_lease_while_the_pipeline_runs(
    router: Router,
    ledger: SqlLedger,
    flags: FakeFlags,
    instant: FakeInstant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lease is held while the pipeline runs; a terminal end gives it up in one write."""
    flags.path = Route.INSTANT
    router.intake(make_order("o-1"), source="api")
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    lease = Lease(order.order_id, OWNER)
    held_while_running = []
    play = instant.run

    def run_and_look(order: Any, **kwargs: Any) -> Any:
        held_while_running.append(ledger.renew_leases(OWNER, ["o-1"], lease_seconds=30))
        held_while_running.append(story(ledger)["status"])
        return play(order, **kwargs)

    monkeypatch.setattr(instant, "run", run_and_look)
    disposition = router.process(order, lease)
    assert held_while_running == [{"o-1"}, "running"]
    assert (disposition.released, lease.released.is_set()) == (True, True)
    assert story(ledger)["status"] == "fulfilled"
    held = ledger.renew_leases(OWNER, ["o-1"], lease_seconds=30)
    assert (held, ledger.counts().dispatch_queue) == (set(), 0)


# -- the instant path ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["fulfilled", "rejected_fraud", "payment_declined"])
def test_instant_outcomes_become_terminal_statuses(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock, outcome: str
) -> None:
    """Each business outcome of the pipeline ends the order with that status and its steps."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", outcome)
    assert process(router, ledger, clock).done is True
    told = story(ledger)
    expected = execution("o-1", outcome)
    assert (told["status"], told["outcome"]) == (outcome, outcome)
    assert told["timestamps"]["terminal"] == expected.finished_at.isoformat()  # type: ignore[union-attr]
    assert [(s["path"], s["step"], s["decision"]) for s in told["steps"]] == [
        ("instant", s.step, s.decision) for s in expected.steps
    ]
    assert ledger.claim_due(OWNER, limit=1, lease_seconds=30) == []


def test_a_pipeline_fallback_hands_the_order_to_the_batch_jobs(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """A pipeline that released the order leaves it fell_back, with the reason, followed."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", execution("o-1", "fell_back", error="States.TaskFailed", cause="503"))
    process(router, ledger, clock)
    told = story(ledger)
    assert (told["status"], told["handoff"]) == ("fell_back", "fallback")
    assert told["transitions"][-1]["reason"] == "States.TaskFailed: 503"
    assert ledger.followed_open(["o-1"]) == {"o-1"}


def test_a_lost_claim_leaves_the_order_to_legacy(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """When the batch jobs had the order first, legacy keeps it and the ledger follows it."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", "legacy_owned")
    process(router, ledger, clock)
    told = story(ledger)
    assert (told["status"], told["handoff"]) == ("fell_back", "legacy_owned")
    assert "claim lost" in told["transitions"][-1]["reason"]
    assert ledger.followed_open(["o-1"]) == {"o-1"}


def test_a_failing_pipeline_is_retried_then_released(
    router: Router, ledger: SqlLedger, instant: FakeInstant, legacy: FakeLegacy, clock: Clock
) -> None:
    """Pipeline errors are retried up to the limit, then the claim is released and why kept."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", *[ExecutionError("executor broke")] * 3)
    dispositions = [process(router, ledger, clock) for _ in range(4)]
    assert [d.done for d in dispositions] == [False, False, False, True]
    assert dispositions[0].error == "instant pipeline failed: executor broke"
    assert instant.runs["o-1", False] == 3
    [(order_id, reason)] = legacy.released
    assert order_id == "o-1"
    assert reason.startswith("instant path gave up after 3 attempts")
    told = story(ledger)
    assert (told["status"], told["handoff"], told["attempts"]) == ("fell_back", "fallback", 4)
    assert told["transitions"][-1]["reason"] == reason
    assert [s["step"] for s in told["steps"]] == ["release"]


def test_a_refusal_from_legacy_falls_back_at_once(
    router: Router, ledger: SqlLedger, instant: FakeInstant, legacy: FakeLegacy, clock: Clock
) -> None:
    """A 4xx from the legacy app is not retried: the order is handed back at once."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", LegacyRejected("amount must be positive", status=422, body={}))
    assert process(router, ledger, clock).done is True
    assert [order_id for order_id, _ in legacy.released] == ["o-1"]
    told = story(ledger)
    assert (told["status"], told["attempts"]) == ("fell_back", 1)
    assert "refused the instant path: amount must be positive" in told["transitions"][-1]["reason"]


def test_a_retry_can_succeed(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """An order whose first run hit a legacy outage is fulfilled on the retry."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", LegacyUnavailable("legacy app refused the connection"), "fulfilled")
    assert [process(router, ledger, clock).done for _ in range(2)] == [False, True]
    told = story(ledger)
    assert (told["status"], told["attempts"]) == ("fulfilled", 2)
    assert told["last_error"] == "instant pipeline failed: legacy app refused the connection"


def test_retries_back_off(ledger: SqlLedger, clock: Clock) -> None:
    """Retry delays double per attempt, within the jitter, up to the maximum."""
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.2)
    delays = [policy.delay_s(attempt) for attempt in (1, 2, 3, 4, 9)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 10], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_failed_execution_falls_back_at_once(
    router: Router,
    ledger: SqlLedger,
    instant: FakeInstant,
    legacy: FakeLegacy,
    clock: Clock,
    status: str,
) -> None:
    """An execution that ended without an outcome is not retried: the claim is released."""
    router.intake(make_order("o-1"), source="api")
    failed = execution("o-1", None, status=status, error="States.Runtime", steps=[])
    instant.script("o-1", failed)
    assert process(router, ledger, clock).done is True
    assert [order_id for order_id, _ in legacy.released] == ["o-1"]
    assert f"ended {status}: States.Runtime" in story(ledger)["transitions"][-1]["reason"]


def test_a_running_execution_is_joined_again_later(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """An execution still running at the timeout is waited for on the next attempt."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", execution("o-1", None, status="RUNNING", steps=[]), "fulfilled")
    assert [process(router, ledger, clock).done for _ in range(2)] == [False, True]
    assert (story(ledger)["status"], instant.runs["o-1", False]) == ("fulfilled", 2)


def test_an_unreleasable_order_ends_failed(
    router: Router, ledger: SqlLedger, instant: FakeInstant, legacy: FakeLegacy, clock: Clock
) -> None:
    """When the claim cannot be handed back within the limit, the order fails for a person."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", *[ExecutionError("down")] * 3)
    legacy.release_errors = [LegacyUnavailable("legacy down")] * 2
    dispositions = [process(router, ledger, clock) for _ in range(5)]
    assert [d.done for d in dispositions] == [False, False, False, False, True]
    told = story(ledger)
    assert told["status"] == "failed"
    assert "could not hand the order back to legacy" in told["transitions"][-1]["reason"]


def test_a_refused_release_still_hands_the_order_over(
    router: Router, ledger: SqlLedger, instant: FakeInstant, legacy: FakeLegacy, clock: Clock
) -> None:
    """A release the legacy app refuses (not claimed) still leaves the order to legacy."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", execution("o-1", None, status="FAILED", error="boom", steps=[]))
    legacy.release_errors = [ClaimConflict("o-1", body={"error": "not_claimed"})]
    process(router, ledger, clock)
    told = story(ledger)
    assert (told["status"], told["handoff"]) == ("fell_back", "fallback")
    assert "release refused" in told["transitions"][-1]["reason"]


def test_a_resumed_order_records_its_steps_once(
    router: Router,
    ledger: SqlLedger,
    instant: FakeInstant,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Processing the same order again (after a crash) re-joins it and duplicates nothing."""
    router.intake(make_order("o-1"), source="api")
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    with monkeypatch.context() as patch:
        # The worker dies after the pipeline ended, before its last write.
        patch.setattr(ledger, "finish", _killed)
        with pytest.raises(SystemExit):
            router.process(order, Lease("o-1", OWNER))
    assert story(ledger)["status"] == "running"
    # Its lease expires and the order is taken up again.
    clock.advance(31)
    [again] = ledger.claim_due("other", limit=1, lease_seconds=30)
    assert router.process(again, Lease("o-1", "other")).done is True
    told = story(ledger)
    assert (told["status"], len(told["steps"])) == ("fulfilled", 4)
    assert [t["status"] for t in told["transitions"]].count("fulfilled") == 1


def _killed(*_args: Any, **_kwargs: Any) -> None:
    raise SystemExit("killed")


def test_repeated_steps_are_numbered(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """A step the pipeline retried is recorded once per try, numbered."""
    router.intake(make_order("o-1"), source="api")
    steps = [("claim", "claimed"), ("fraud_scan", None), ("fraud_scan", "pass")]
    instant.script("o-1", execution("o-1", "rejected_fraud", steps=steps))
    process(router, ledger, clock)
    assert [(s["step"], s["seq"]) for s in story(ledger)["steps"]] == [
        ("claim", 0),
        ("fraud_scan", 0),
        ("fraud_scan", 1),
    ]


def test_a_lost_lease_stops_processing(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """A worker whose lease was taken over stops before running the pipeline."""
    router.intake(make_order("o-1"), source="api")
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    lease = Lease("o-1", OWNER)
    lease.lost.set()
    with pytest.raises(LeaseLost, match="o-1"):
        router.process(order, lease)
    assert sum(instant.runs.values()) == 0


def test_a_lease_flag_is_set_read_and_cleared() -> None:
    """A lease's flags answer as threading.Event's set, is_set and clear do."""
    lease = Lease("o-1", OWNER)
    assert (lease.lost.is_set(), lease.released.is_set()) == (False, False)
    lease.released.set()
    assert (lease.lost.is_set(), lease.released.is_set()) == (False, True)
    lease.released.clear()
    lease.lost.set()
    lease.lost.set()
    assert (lease.lost.is_set(), lease.released.is_set()) == (True, False)


# -- the shadow path -------------------------------------------------------------------------------


def test_shadow_runs_a_dry_run_beside_legacy(
    router: Router, ledger: SqlLedger, flags: FakeFlags, instant: FakeInstant, clock: Clock
) -> None:
    """A shadow order runs the pipeline in dry-run, records its steps as such, and is followed."""
    flags.path = Route.SHADOW
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", execution("o-1", "fulfilled", dry_run=True))
    assert process(router, ledger, clock).done is True
    told = story(ledger)
    assert (told["status"], told["dry_run_outcome"]) == ("routed", "fulfilled")
    assert {(s["path"], s["dry_run"]) for s in told["steps"]} == {("instant", True)}
    assert (instant.runs["o-1", True], instant.runs["o-1", False]) == (1, 0)
    assert ledger.followed_open(["o-1"]) == {"o-1"}


def test_a_failing_dry_run_gives_up_without_touching_legacy(
    router: Router,
    ledger: SqlLedger,
    flags: FakeFlags,
    instant: FakeInstant,
    legacy: FakeLegacy,
    clock: Clock,
) -> None:
    """A dry run that keeps failing is given up with the error kept; legacy is left alone."""
    flags.path = Route.SHADOW
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", *[ExecutionError("executor broke")] * 3)
    assert [process(router, ledger, clock).done for _ in range(3)] == [False, False, True]
    told = story(ledger)
    assert told["status"] == "routed"
    assert told["last_error"] == "dry run gave up after 3 attempts: executor broke"
    assert legacy.released == []


# -- decisions -------------------------------------------------------------------------------------


def test_a_decision_is_pinned_across_a_rollout_change(
    router: Router, ledger: SqlLedger, flags: FakeFlags, instant: FakeInstant, clock: Clock
) -> None:
    """An order keeps the path it was given when the rollout changes; new orders follow it."""
    router.intake(make_order("early"), source="api")
    instant.script("early", ExecutionError("try again"))
    process(router, ledger, clock)
    flags.path, flags.rollout, flags.revision = Route.LEGACY, 0, "rev-2"
    router.intake(make_order("late"), source="api")
    clock.advance(1)
    process(router, ledger, clock)
    process(router, ledger, clock)
    early, late = story(ledger, "early"), story(ledger, "late")
    assert (early["decision"]["path"], early["decision"]["flag_revision"]) == ("instant", "rev-1")
    assert early["status"] == "fulfilled"
    assert (late["decision"]["path"], late["decision"]["flag_revision"]) == ("legacy", "rev-2")
    assert flags.calls == 2


def test_a_failing_flag_source_means_legacy(
    router: Router, ledger: SqlLedger, flags: FakeFlags, clock: Clock
) -> None:
    """A flag source that raises (it should not) sends the order to legacy, saying why."""
    flags.error = RuntimeError("bug")
    router.intake(make_order("o-1"), source="api")
    process(router, ledger, clock)
    decision = story(ledger)["decision"]
    assert (decision["path"], decision["flag_revision"]) == ("legacy", "unknown")
    assert "flag source raised RuntimeError: bug" in decision["reason"]


def test_logs_name_the_order_and_never_the_payment_token(
    router: Router, ledger: SqlLedger, clock: Clock
) -> None:
    """Every processing log event carries the order_id and no payment data."""
    with capture_logs() as logs:
        router.intake(make_order("o-1", payment_token="tok_SECRET"), source="api")
        process(router, ledger, clock)
    assert logs
    assert all(event.get("order_id") == "o-1" for event in logs)
    assert "tok_SECRET" not in repr(logs)


def test_run_times_come_from_the_pipeline(router: Router, ledger: SqlLedger, clock: Clock) -> None:
    """Step times recorded are the pipeline's own, not the router's clock."""
    router.intake(make_order("o-1"), source="api")
    process(router, ledger, clock)
    assert story(ledger)["steps"][0]["started_at"] == T_RUN.isoformat()


class ForgettingInstant(FakeInstant):
    """A FakeInstant that keeps executions, as the LocalBackend does, and is told to forget."""

    def __init__(self) -> None:
        super().__init__()
        self.forgotten: list[str] = []

    def forget(self, order_id: str, *, dry_run: bool = False) -> None:
        self.forgotten.append(f"{order_id} dry_run={dry_run}")


def test_an_execution_is_forgotten_once_the_ledger_has_its_end(
    ledger: SqlLedger, flags: FakeFlags, legacy: FakeLegacy, clock: Clock
) -> None:
    """The backend forgets a terminal order's execution after finish(), not a fallen-back one's."""
    instant = ForgettingInstant()
    router = Router(ledger, flags, legacy, instant, clock=clock)
    for order_id in ("o-1", "o-2"):
        router.intake(make_order(order_id), source="api")
    instant.script("o-2", execution("o-2", "fell_back", error="States.TaskFailed", cause="503"))
    process(router, ledger, clock)
    process(router, ledger, clock)
    assert (story(ledger, "o-1")["status"], instant.forgotten) == (
        "fulfilled",
        ["o-1 dry_run=False"],
    )


def _routing_lines(logs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Each routing or run-start line: event, path, run_started, dry_run."""
    return [
        (event["event"], event.get("path"), event.get("run_started"), event.get("dry_run"))
        for event in logs
        if event["event"] in {"order_routed", "instant_run_started"}
    ]


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        (Route.INSTANT, [("order_routed", "instant", True, False)]),
        (Route.SHADOW, [("order_routed", "shadow", True, True)]),
        (Route.LEGACY, [("order_routed", "legacy", None, None)]),
    ],
)
def test_a_run_starting_as_its_order_is_routed_is_one_log_line(
    router: Router,
    ledger: SqlLedger,
    flags: FakeFlags,
    instant: FakeInstant,
    clock: Clock,
    path: Route,
    lines: list[tuple[Any, ...]],
) -> None:
    """An order routed and its run started at once says both in one ``order_routed`` line,
    with the decision and ``run_started``; a legacy order's line starts no run."""
    flags.path = path
    router.intake(make_order("o-1"), source="api")
    if path is Route.SHADOW:
        instant.script("o-1", execution("o-1", "fulfilled", dry_run=True))
    with capture_logs() as logs:
        process(router, ledger, clock)
    assert _routing_lines(logs) == lines
    [routed] = [event for event in logs if event["event"] == "order_routed"]
    assert (routed["order_id"], routed["flag_revision"]) == ("o-1", "rev-1")


def test_a_run_started_again_is_its_own_log_line(
    router: Router, ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """A retried order was routed already: its second run is an ``instant_run_started``
    line, so that every run started is one line (order_routed's or its own)."""
    router.intake(make_order("o-1"), source="api")
    instant.script("o-1", LegacyUnavailable("legacy app refused the connection"), "fulfilled")
    with capture_logs() as logs:
        process(router, ledger, clock)
        process(router, ledger, clock)
    assert _routing_lines(logs) == [
        ("order_routed", "instant", True, False),
        ("instant_run_started", None, None, False),
    ]


def test_a_lease_lost_as_the_order_is_routed_still_logs_the_routing(
    router: Router, ledger: SqlLedger, instant: FakeInstant
) -> None:
    """The decision pinned is logged even when the run does not start (lease lost)."""
    router.intake(make_order("o-1"), source="api")
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    lease = Lease("o-1", OWNER)
    real_pin = ledger.pin_decision

    def pin_then_lose(*args: Any, **kwargs: Any) -> Any:
        pinned = real_pin(*args, **kwargs)
        lease.lost.set()  # another worker took the order over meanwhile
        return pinned

    ledger.pin_decision = pin_then_lose  # type: ignore[method-assign]
    with capture_logs() as logs, pytest.raises(LeaseLost):
        router.process(order, lease)
    assert _routing_lines(logs) == [("order_routed", "instant", None, None)]
    assert sum(instant.runs.values()) == 0
