"""Retries per pipeline step are bounded in total: the pipeline's Retry owns them (issue 9)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strangler.instant.definition import load_definition
from strangler.instant.local_backend import LocalBackend
from strangler.legacy_adapter import LegacyClient
from strangler.orders import OrderNotification
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """One simulator for the module, jobs only on demand."""
    with start_legacy_sim(tmp_path_factory.mktemp("legacy-sim"), SimOptions(scheduler=False)) as s:
        yield s


def payment_retry_limit() -> int:
    """MaxAttempts of the AuthorizePayment Task's Retry for LegacyUnavailable."""
    states = load_definition()["States"]
    (retry,) = [
        r for r in states["AuthorizePayment"]["Retry"] if "LegacyUnavailable" in r["ErrorEquals"]
    ]
    return int(retry["MaxAttempts"])


def test_an_always_erring_gateway_is_called_once_per_pipeline_attempt(sim: RunningSim) -> None:
    """With the adapter's default retries, authorize_payment is called 1 + MaxAttempts times."""
    order = OrderNotification.from_dict(
        {
            "order_id": "retry-bound-1",
            "user_guid": "user-1",
            "unit_id": "unit-spa",
            "amount_cents": 4900,
            "currency": "USD",
            "quantity": 1,
            "payment_token": "error_gateway",
        }
    )
    with LegacyClient(sim.url, backoff_s=0.001) as legacy:  # default retries, as served
        legacy.create_order(order)
        with LocalBackend(legacy, max_workers=1, sleeper=lambda _s: None) as backend:
            result = backend.run(order, timeout_s=TIMEOUT_S)
        seen = legacy.get_order(order.order_id)
    assert (result.status, result.outcome) == ("SUCCEEDED", "fell_back")
    assert seen.attempts == 1 + payment_retry_limit() == 4
