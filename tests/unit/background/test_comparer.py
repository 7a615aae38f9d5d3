"""Late matching through the router and follower hooks, the sweep, and the noise probe."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from strangler.background.comparer import Comparer
from strangler.background.follower import Follower
from strangler.background.noise import NoiseProbe
from strangler.compare.config import CompareConfig
from strangler.exceptions import LedgerError
from strangler.instant.results import ExecutionResult
from strangler.ledger import SqlLedger
from strangler.ledger.schema import comparison_steps, comparisons
from strangler.legacy_adapter.exceptions import LegacyUnavailable
from strangler.legacy_adapter.models import StepOutcome
from strangler.orders import Route
from strangler.routing.router import Lease, RetryPolicy, Router
from tests.unit.ledger.support import T0, Clock, make_order
from tests.unit.routing.fakes import (
    BATCH_FULFILLED,
    FakeFlags,
    FakeInstant,
    FakeLegacy,
    execution,
    legacy_order,
)

OWNER = "worker-1"
LATER = T0 + timedelta(minutes=15)


class ApiLegacy(FakeLegacy):
    """The fake legacy app with the per-order API's dry-run steps (fraud verdict settable)."""

    def __init__(self, fraud: str = "pass", error: Exception | None = None) -> None:
        super().__init__()
        self.fraud = fraud
        self.error = error
        self.dry_runs: list[str] = []

    def _answer(self, step: str, decision: str, **details: Any) -> StepOutcome:
        self.dry_runs.append(step)
        if self.error is not None:
            raise self.error
        return StepOutcome(
            step=step, decision=decision, order_status="pending", dry_run=True, details=details
        )

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:  # noqa: ARG002
        reason = {"reason": "blocked_user"} if self.fraud == "reject" else {}
        return self._answer("fraud_scan", self.fraud, **reason)

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:  # noqa: ARG002
        return self._answer("authorize_payment", "authorized")

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:  # noqa: ARG002
        return self._answer("fulfill", "fulfilled", vouchers=["GC-1"])


@pytest.fixture
def legacy() -> ApiLegacy:
    return ApiLegacy()


@pytest.fixture
def comparer(ledger: SqlLedger, clock: Clock) -> Comparer:
    return Comparer(ledger, CompareConfig(max_age_s=3600), clock=clock)


@pytest.fixture
def instant() -> FakeInstant:
    return FakeInstant()


def make_router(
    ledger: SqlLedger,
    legacy: ApiLegacy,
    instant: FakeInstant,
    clock: Clock,
    path: Route,
    **hooks: Any,
) -> Router:
    retry = RetryPolicy(max_attempts=3, release_attempts=2, base_delay_s=0.0, jitter=0.0)
    flags = FakeFlags(path)
    return Router(ledger, flags, legacy, instant, retry=retry, clock=clock, **hooks)  # type: ignore[arg-type]


def make_follower(
    ledger: SqlLedger, legacy: ApiLegacy, clock: Clock, comparer: Comparer
) -> Follower:
    return Follower(
        ledger, legacy, clock=clock, on_legacy_terminal=comparer.notify, sweep=comparer.sweep_if_due
    )  # type: ignore[arg-type]


def process(router: Router, ledger: SqlLedger) -> None:
    """What a dispatcher worker does for the one due order."""
    [order] = ledger.claim_due(OWNER, limit=1, lease_seconds=30)
    disposition = router.process(order, Lease(order.order_id, OWNER))
    if not disposition.released:
        ledger.release_lease(order.order_id, OWNER, done=disposition.done, error=disposition.error)


def dry_run(order_id: str = "o-1") -> ExecutionResult:
    """A fulfilled dry run whose fulfil step issued one voucher, as the handlers record it."""
    result = execution(order_id, "fulfilled", dry_run=True)
    steps = tuple(
        dataclasses.replace(s, payload={"details": {"vouchers": ["GC-1"]}})
        if s.step == "fulfill"
        else s
        for s in result.steps
    )
    return dataclasses.replace(result, steps=steps)


def finish_in_legacy(legacy: FakeLegacy, order_id: str = "o-1") -> None:
    order = legacy_order(order_id, "fulfilled", updated_at=LATER, history=BATCH_FULFILLED)
    legacy.put(dataclasses.replace(order, vouchers=("GC-1",)))


def stored(ledger: SqlLedger) -> list[tuple[str, str, str, str | None, bool | None]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                comparisons.c.order_id,
                comparisons.c.kind,
                comparisons.c.status,
                comparisons.c.reason,
                comparisons.c.mismatch,
            )
        ).all()
    return [(r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4])) for r in rows]


def step_verdicts(ledger: SqlLedger) -> dict[str, str]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(comparison_steps.c.step, comparison_steps.c.verdict)).all()
    return {str(step): str(verdict) for step, verdict in rows}


def test_dry_run_first_then_legacy(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """The dry run alone stores nothing; legacy's terminal status then triggers the comparison."""
    router = make_router(ledger, legacy, instant, clock, Route.SHADOW, on_dry_run=comparer.notify)
    instant.script("o-1", dry_run())
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    assert stored(ledger) == []
    finish_in_legacy(legacy)
    make_follower(ledger, legacy, clock, comparer).poll_once()
    assert stored(ledger) == [("o-1", "shadow", "compared", None, False)]
    assert step_verdicts(ledger) == dict.fromkeys(
        ("fraud_scan", "authorize_payment", "fulfill", "outcome"), "match"
    )


def test_legacy_first_then_the_dry_run(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """Legacy ends the order while the dry run is still retrying; the dry run then compares."""
    router = make_router(ledger, legacy, instant, clock, Route.SHADOW, on_dry_run=comparer.notify)
    instant.script("o-1", LegacyUnavailable("legacy app down"), dry_run())
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    finish_in_legacy(legacy)
    make_follower(ledger, legacy, clock, comparer).poll_once()
    assert stored(ledger) == []
    process(router, ledger)
    assert stored(ledger) == [("o-1", "shadow", "compared", None, False)]


def test_a_failing_comparison_never_fails_routing(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """A ledger error while comparing is logged; routing goes on and the sweep recovers it."""

    class Broken:
        def comparison_record(self, order_id: str) -> None:  # noqa: ARG002
            raise LedgerError("ledger down")

    broken = Comparer(Broken(), clock=clock)  # type: ignore[arg-type]
    router = make_router(ledger, legacy, instant, clock, Route.SHADOW, on_dry_run=broken.notify)
    finish_in_legacy(legacy)
    router.intake(make_order("o-1"), source="api")
    make_follower(ledger, legacy, clock, broken).poll_once()
    instant.script("o-1", dry_run())
    with capture_logs() as logs:
        process(router, ledger)
    assert [e["order_id"] for e in logs if e["event"] == "comparison_deferred"] == ["o-1"]
    story = ledger.story("o-1")
    assert story is not None
    assert (story["status"], story["dry_run_outcome"]) == ("fulfilled", "fulfilled")
    assert stored(ledger) == []
    assert comparer.sweep() == 1
    assert stored(ledger) == [("o-1", "shadow", "compared", None, False)]


def test_the_sweep_gives_up_an_order_past_the_age_limit(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """A dry run whose legacy side never ends is counted legacy_not_terminal after max age."""
    router = make_router(ledger, legacy, instant, clock, Route.SHADOW, on_dry_run=comparer.notify)
    instant.script("o-1", dry_run())
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    clock.advance(3599)
    assert comparer.sweep() == 0
    clock.advance(1)
    assert comparer.sweep() == 1
    assert comparer.sweep() == 0
    assert stored(ledger) == [("o-1", "shadow", "not_compared", "legacy_not_terminal", None)]


def test_a_dry_run_that_gave_up_is_counted_at_once(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """A shadow dry run that gave up after its attempts is stored as dry_run_failed by the sweep."""
    router = make_router(ledger, legacy, instant, clock, Route.SHADOW, on_dry_run=comparer.notify)
    instant.script("o-1", *[LegacyUnavailable("down")] * 3)
    router.intake(make_order("o-1"), source="api")
    for _ in range(3):
        process(router, ledger)
    assert comparer.sweep() == 1
    assert stored(ledger) == [("o-1", "shadow", "not_compared", "dry_run_failed", None)]


def _probed_and_finished(
    ledger: SqlLedger, legacy: ApiLegacy, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """Route o-1 to legacy with the probe's first run, then let the batch jobs finish it."""
    probe = NoiseProbe(ledger, legacy, share=1.0, clock=clock)
    router = make_router(ledger, legacy, instant, clock, Route.LEGACY, on_legacy_routed=probe.probe)
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    finish_in_legacy(legacy)

    def terminal(order_id: str) -> None:
        comparer.notify(order_id)
        probe.repeat(order_id)

    follower = Follower(ledger, legacy, clock=clock, on_legacy_terminal=terminal)  # type: ignore[arg-type]
    follower.poll_once()


def test_a_divergence_that_repeats_is_not_noise(
    ledger: SqlLedger, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """An API that rejects where the batch jobs fulfilled, every time, has no noise."""
    legacy = ApiLegacy(fraud="reject")
    _probed_and_finished(ledger, legacy, instant, clock, comparer)
    assert legacy.dry_runs == ["fraud_scan", "fraud_scan"]
    assert stored(ledger) == [("o-1", "noise", "compared", None, False)]
    assert step_verdicts(ledger) == {"fraud_scan": "match", "outcome": "match"}


class FlakyLegacy(ApiLegacy):
    """An API whose fraud verdict changes between two runs on the same order."""

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        self.fraud = "reject" if not self.dry_runs else "pass"
        return super().fraud_scan(order_id, dry_run=dry_run)


def test_a_disagreement_that_does_not_repeat_is_noise(
    ledger: SqlLedger, instant: FakeInstant, clock: Clock, comparer: Comparer
) -> None:
    """An API that answers differently the second time on the same order is noise."""
    legacy = FlakyLegacy()
    _probed_and_finished(ledger, legacy, instant, clock, comparer)
    assert stored(ledger) == [("o-1", "noise", "compared", None, True)]
    assert step_verdicts(ledger)["fraud_scan"] == "mismatch"


def test_the_noise_sweep_repeats_orders_the_hook_missed(
    ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """A probed order whose batch jobs finished is judged again by the sweep."""
    legacy = ApiLegacy()
    probe = NoiseProbe(ledger, legacy, share=1.0, clock=clock)
    router = make_router(ledger, legacy, instant, clock, Route.LEGACY, on_legacy_routed=probe.probe)
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    finish_in_legacy(legacy)
    Follower(ledger, legacy, clock=clock).poll_once()  # type: ignore[arg-type]
    assert probe.sweep() == 1
    assert stored(ledger) == [("o-1", "noise", "compared", None, False)]


def test_a_failing_noise_probe_is_counted(
    ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """A probe the legacy app fails is stored as dry_run_failed; routing is not affected."""
    legacy = ApiLegacy(error=LegacyUnavailable("down"))
    probe = NoiseProbe(ledger, legacy, share=1.0, clock=clock)
    router = make_router(ledger, legacy, instant, clock, Route.LEGACY, on_legacy_routed=probe.probe)
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    assert stored(ledger) == [("o-1", "noise", "not_compared", "dry_run_failed", None)]
    story = ledger.story("o-1")
    assert story is not None
    assert story["status"] == "routed"


def test_orders_outside_the_sample_are_not_probed(
    ledger: SqlLedger, instant: FakeInstant, clock: Clock
) -> None:
    """With a share of 0 no legacy order is dry-run."""
    legacy = ApiLegacy()
    probe = NoiseProbe(ledger, legacy, share=0.0, clock=clock)
    router = make_router(ledger, legacy, instant, clock, Route.LEGACY, on_legacy_routed=probe.probe)
    router.intake(make_order("o-1"), source="api")
    process(router, ledger)
    assert legacy.dry_runs == []
