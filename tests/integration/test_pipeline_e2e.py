"""The pipeline end to end: LocalBackend against the real legacy simulator process.

One simulator process serves the module, with its scheduler off, so no batch job races
the pipeline unless a test runs one (which touches only orders still in batch mode).
Retry backoff goes through an injected sleeper: no test really waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strangler.instant.describe import describe, format_history
from strangler.instant.local_backend import LocalBackend
from strangler.legacy_adapter import LegacyClient, LegacyOrder
from strangler.orders import OrderNotification
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """One simulator for the module (each test uses its own order ids), jobs only on demand."""
    workdir = tmp_path_factory.mktemp("legacy-sim")
    with start_legacy_sim(workdir, SimOptions(scheduler=False)) as running:
        yield running


@pytest.fixture
def legacy(sim: RunningSim) -> Iterator[LegacyClient]:
    """An adapter that does not retry by itself, so the pipeline's Retry is what is tested."""
    with LegacyClient(sim.url, retries=0, read_timeout=5.0) as client:
        yield client
    sim.set_faults(error_rate=0.0)


class Sleeper:
    """Records each backoff instead of sleeping; runs ``on_sleep`` at the first one."""

    def __init__(self, on_sleep: Callable[[], Any] | None = None) -> None:
        self.slept: list[float] = []
        self._on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep()
            self._on_sleep = None


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def backend(legacy: LegacyClient, sleeper: Sleeper) -> Iterator[LocalBackend]:
    with LocalBackend(legacy, max_workers=2, sleeper=sleeper) as local:
        yield local


def _order(legacy: LegacyClient, order_id: str, **fields: Any) -> OrderNotification:
    order = OrderNotification.from_dict(
        {
            "order_id": order_id,
            "user_guid": "user-1",
            "unit_id": "unit-spa",
            "amount_cents": 4900,
            "currency": "USD",
            "quantity": 2,
            "payment_token": "tok_visa",
            **fields,
        }
    )
    legacy.create_order(order)
    return order


def _api_steps(order: LegacyOrder) -> list[tuple[str, str | None]]:
    return [(record.step, record.decision) for record in order.steps_by("api")]


def test_an_order_is_fulfilled_with_a_readable_history(
    legacy: LegacyClient, backend: LocalBackend
) -> None:
    """A good order goes claim, fraud, payment, fulfilment in the simulator: fulfilled."""
    order = _order(legacy, "e2e-fulfilled")
    result = backend.run(order, timeout_s=TIMEOUT_S)
    print(describe(result))  # shown with -s: what docs/instant.md quotes
    assert (result.status, result.outcome) == ("SUCCEEDED", "fulfilled")
    assert [(s.step, s.decision, s.error) for s in result.steps] == [
        ("claim", "claimed", None),
        ("fraud_scan", "pass", None),
        ("authorize_payment", "authorized", None),
        ("fulfill", "fulfilled", None),
    ]
    output = result.output or {}
    assert (output["order_id"], output["dry_run"], output["fallback"]) == (
        "e2e-fulfilled",
        False,
        None,
    )
    assert len(output["fulfilment"]["details"]["vouchers"]) == 2
    seen = legacy.get_order("e2e-fulfilled")
    assert (seen.status, seen.processing_mode) == ("fulfilled", "instant")
    assert list(seen.vouchers) == output["fulfilment"]["details"]["vouchers"]
    assert _api_steps(seen) == [
        ("fraud_scan", "pass"),
        ("authorize_payment", "authorized"),
        ("fulfill", "fulfilled"),
    ]
    history = format_history(result.history).splitlines()
    assert len(history) == len(result.history)
    assert "ExecutionSucceeded" in history[-1]


@pytest.mark.parametrize(
    ("fields", "outcome", "last_step"),
    [
        ({"amount_cents": 250_000}, "rejected_fraud", ("fraud_scan", "reject")),
        ({"payment_token": "fraud_stolen"}, "rejected_fraud", ("fraud_scan", "reject")),
        (
            {"payment_token": "decline_insufficient"},
            "payment_declined",
            ("authorize_payment", "declined"),
        ),
    ],
    ids=["over-limit", "fraud-token", "declined"],
)
def test_business_rejections_end_successfully(
    legacy: LegacyClient,
    backend: LocalBackend,
    fields: dict[str, Any],
    outcome: str,
    last_step: tuple[str, str],
) -> None:
    """A fraud rejection or a payment decline is an outcome, not a failure of the execution."""
    order = _order(legacy, f"e2e-{outcome}-{len(str(fields))}", **fields)
    result = backend.run(order, timeout_s=TIMEOUT_S)
    assert (result.status, result.outcome) == ("SUCCEEDED", outcome)
    assert (result.steps[-1].step, result.steps[-1].decision) == last_step
    assert legacy.get_order(order.order_id).status == outcome


def test_an_order_the_batch_jobs_have_is_left_to_them(
    legacy: LegacyClient, backend: LocalBackend, sim: RunningSim
) -> None:
    """When a batch job already touched the order, the claim is refused and nothing runs twice."""
    order = _order(legacy, "e2e-batch-owned")
    sim.run_job("fraud_scan")
    result = backend.run(order, timeout_s=TIMEOUT_S)
    assert (result.status, result.outcome) == ("SUCCEEDED", "legacy_owned")
    assert [(s.step, s.decision) for s in result.steps] == [("claim", "legacy_owned")]
    seen = legacy.get_order("e2e-batch-owned")
    assert (seen.status, seen.processing_mode, _api_steps(seen)) == ("fraud_checked", "batch", [])


def test_a_transient_outage_is_retried_and_the_order_fulfilled(
    legacy: LegacyClient, sim: RunningSim
) -> None:
    """With every call failing, the claim is retried after a backoff; the outage ends; fulfilled."""
    order = _order(legacy, "e2e-transient")
    sim.set_faults(error_rate=1.0)
    sleeper = Sleeper(on_sleep=lambda: sim.set_faults(error_rate=0.0))
    with LocalBackend(legacy, max_workers=1, sleeper=sleeper) as backend:
        result = backend.run(order, timeout_s=TIMEOUT_S)
    assert (result.status, result.outcome) == ("SUCCEEDED", "fulfilled")
    assert len(sleeper.slept) == 1
    claim = result.steps[0]
    assert (claim.step, claim.decision, claim.error) == ("claim", "claimed", None)
    assert [e["error"] for e in claim.payload["attempt_errors"]] == ["LegacyUnavailable"]
    assert legacy.get_order("e2e-transient").status == "fulfilled"


def test_a_permanent_error_hands_the_order_back_to_the_batch_jobs(
    legacy: LegacyClient, backend: LocalBackend, sleeper: Sleeper
) -> None:
    """A payment gateway that always errs exhausts the retries; the claim is released."""
    order = _order(legacy, "e2e-gateway-down", payment_token="error_gateway")
    result = backend.run(order, timeout_s=TIMEOUT_S)
    assert (result.status, result.outcome) == ("SUCCEEDED", "fell_back")
    payment = result.steps[2]
    assert (payment.step, payment.decision) == ("authorize_payment", None)
    assert (payment.error or "").startswith("LegacyUnavailable")
    assert len(payment.payload["attempt_errors"]) == 4  # the first attempt and three retries
    assert len(sleeper.slept) == 3
    release = result.steps[3]
    assert (release.step, release.decision) == ("release", "released")
    fallback = (result.output or {})["fallback"]
    assert (fallback["error"], fallback["released"]) == ("LegacyUnavailable", True)
    seen = legacy.get_order("e2e-gateway-down")
    assert (seen.status, seen.processing_mode) == ("fraud_checked", "batch")
    assert (seen.release_reason or "").startswith("instant pipeline fell back: LegacyUnavailable")


def test_a_dry_run_leaves_the_simulator_unchanged(
    legacy: LegacyClient, backend: LocalBackend
) -> None:
    """A dry run computes every decision and writes nothing in the legacy app."""
    order = _order(legacy, "e2e-dry-run")
    before = legacy.get_order("e2e-dry-run")
    result = backend.run(order, dry_run=True, timeout_s=TIMEOUT_S)
    assert (result.status, result.outcome, result.dry_run) == ("SUCCEEDED", "fulfilled", True)
    assert [(s.decision, s.dry_run) for s in result.steps] == [
        ("claimed", True),
        ("pass", True),
        ("authorized", True),
        ("fulfilled", True),
    ]
    assert legacy.get_order("e2e-dry-run") == before


def test_running_an_order_twice_runs_it_once(legacy: LegacyClient, backend: LocalBackend) -> None:
    """A second run for the same order returns the first execution; the app saw one of each step."""
    order = _order(legacy, "e2e-twice")
    first = backend.run(order, timeout_s=TIMEOUT_S)
    second = backend.run(order, timeout_s=TIMEOUT_S)
    assert first == second
    assert len(_api_steps(legacy.get_order("e2e-twice"))) == 3
