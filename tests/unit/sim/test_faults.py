"""Fault injection: seeded error rate, latency, hang and refuse outages, slow jobs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from strangler.sim import FaultConfig, Rules
from strangler.sim.engine import NewOrder, OrderBook
from strangler.sim.exceptions import InvalidInput
from strangler.sim.faults import FaultInjector
from strangler.sim.jobs import JobRunner
from strangler.sim.store import SimStore
from tests.helpers import wait_until
from tests.unit.sim.conftest import OrderFactory


class FakeListener:
    """Records what the refuse outage asks of the server's listening socket."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop_listening(self) -> None:
        self.calls.append("stop")

    def start_listening(self) -> None:
        self.calls.append("start")


class Sleeps:
    """A fake sleep that records how long it was asked to sleep."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def outcomes(injector: FaultInjector, count: int) -> list[int | None]:
    return [
        (fault[0] if fault else None) for fault in (injector.before_request() for _ in range(count))
    ]


def test_error_rate_is_seeded_and_repeatable() -> None:
    """Two injectors with the same seed fail the same requests, about error_rate of them."""
    first = FaultInjector(FaultConfig(error_rate=0.3), seed=11)
    second = FaultInjector(FaultConfig(error_rate=0.3), seed=11)
    runs = outcomes(first, 1000), outcomes(second, 1000)
    assert runs[0] == runs[1]
    failures = runs[0].count(500)
    assert 240 < failures < 360
    assert first.state()["stats"] == {
        "requests": 1000,
        "injected_errors": failures,
        "held": 0,
        "refused_windows": 0,
    }


def test_reseeding_repeats_the_sequence() -> None:
    """Putting the same seed again replays the same faults."""
    injector = FaultInjector(FaultConfig(error_rate=0.5), seed=1)
    before = outcomes(injector, 50)
    injector.configure(FaultConfig(error_rate=0.5), seed=1)
    assert before == outcomes(injector, 50)


def test_latency_is_fixed_plus_bounded_jitter() -> None:
    """Each request sleeps latency_ms plus up to jitter_ms."""
    sleeps = Sleeps()
    injector = FaultInjector(FaultConfig(latency_ms=100, jitter_ms=50), seed=2, sleep=sleeps)
    assert outcomes(injector, 20) == [None] * 20
    assert len(sleeps.seconds) == 20
    assert all(0.1 <= s <= 0.15 for s in sleeps.seconds)
    assert len(set(sleeps.seconds)) > 1


def test_hang_holds_requests_until_the_outage_ends() -> None:
    """During a hang a request is held, then answered 503 once the outage is lifted."""
    injector = FaultInjector(FaultConfig(outage="hang"))
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(injector.before_request()))
    worker.start()
    wait_until(lambda: injector.state()["stats"]["held"] == 1, 5, "the request to be held")
    assert answers == []
    injector.configure(FaultConfig())
    worker.join(5)
    assert answers[0][0] == 503
    assert answers[0][1]["error"] == "outage"
    assert injector.before_request() is None


def test_timed_outages_end_by_themselves() -> None:
    """An outage with outage_seconds lifts itself and keeps the other faults."""
    injector = FaultInjector()
    injector.configure(FaultConfig(outage="hang", outage_seconds=0.05, latency_ms=5))
    assert injector.state()["outage_ends_at"] is not None
    wait_until(lambda: injector.config.outage == "none", 5, "the outage to end")
    assert injector.config == FaultConfig(latency_ms=5)
    assert injector.state()["outage_ends_at"] is None


def test_refuse_closes_and_reopens_the_listener() -> None:
    """A refuse outage closes the listening socket and opens it again when it ends."""
    listener = FakeListener()
    injector = FaultInjector()
    injector.attach(listener)
    injector.configure(FaultConfig(outage="refuse", outage_seconds=0.05))
    assert listener.calls == ["stop"]
    wait_until(lambda: listener.calls == ["stop", "start"], 5, "the listener to reopen")
    assert injector.state()["stats"]["refused_windows"] == 1


def test_refuse_at_start_closes_the_listener_once_attached() -> None:
    """A simulator started in a refuse outage refuses as soon as it has a listener."""
    injector = FaultInjector(FaultConfig(outage="refuse", outage_seconds=60))
    listener = FakeListener()
    injector.attach(listener)
    assert listener.calls == ["stop"]
    injector.close()


def test_slow_jobs_sleep_per_order() -> None:
    """The slow-jobs fault sleeps slow_jobs_ms once per call."""
    sleeps = Sleeps()
    injector = FaultInjector(FaultConfig(slow_jobs_ms=250), sleep=sleeps)
    injector.slow_job_delay()
    assert sleeps.seconds == [0.25]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": "10"}, "latency_ms"),
        ({"outage": "flood"}, "outage"),
        ({"outage": "refuse"}, "outage_seconds"),
        ({"outage": "hang", "outage_seconds": 0}, "outage_seconds"),
        ({"slow_jobs_ms": True}, "slow_jobs_ms"),
        ({"latency": 5}, "latency"),
    ],
    ids=[
        "rate-over-1",
        "negative-latency",
        "latency-string",
        "unknown-outage",
        "refuse-needs-seconds",
        "zero-seconds",
        "bool",
        "unknown-field",
    ],
)
def test_bad_fault_settings_are_named(body: dict[str, Any], field: str) -> None:
    """A bad fault setting is refused, naming the field."""
    with pytest.raises(InvalidInput) as caught:
        FaultConfig.from_json(body)
    assert list(caught.value.fields) == [field]


def test_faults_over_http(client: FlaskClient, make_order: OrderFactory) -> None:
    """PUT /_sim/faults replaces the faults; the control and /healthz are never faulted."""
    order_id = make_order()["order_id"]
    state = client.put("/_sim/faults", json={"error_rate": 1.0, "seed": 4}).get_json()
    assert (state["error_rate"], state["outage"]) == (1.0, "none")
    response = client.get(f"/orders/{order_id}")
    assert (response.status_code, response.get_json()["error"]) == (500, "injected_fault")
    assert client.get("/healthz").status_code == 200
    assert client.get("/_sim/faults").get_json()["stats"]["injected_errors"] == 1
    client.put("/_sim/faults", json={})
    assert client.get(f"/orders/{order_id}").status_code == 200


def test_an_injected_error_happens_before_anything_is_done(client: FlaskClient) -> None:
    """A create answered 500 by the error-rate fault created nothing."""
    client.put("/_sim/faults", json={"error_rate": 1.0})
    response = client.post("/orders", json={"order_id": "o", "user_guid": "u", "unit_id": "x"})
    assert response.status_code == 500
    client.put("/_sim/faults", json={})
    assert client.get("/orders/o").status_code == 404


def test_refuse_without_a_listener_answers_503(client: FlaskClient) -> None:
    """In-process (no server socket), a refuse outage answers 503 instead."""
    client.put("/_sim/faults", json={"outage": "refuse", "outage_seconds": 30})
    response = client.get("/orders")
    assert (response.status_code, response.get_json()["error"]) == (503, "outage")


def test_bad_fault_settings_over_http_are_400(client: FlaskClient) -> None:
    """A bad PUT answers 400 naming the field."""
    response = client.put("/_sim/faults", json={"error_rate": 2})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["error_rate"]


def test_slow_jobs_slow_each_order_of_a_run(tmp_path: Path) -> None:
    """With slow jobs, a run sleeps once per order it processes."""
    sleeps = Sleeps()
    store = SimStore(tmp_path / "s.sqlite3")
    book = OrderBook(store, Rules())
    runner = JobRunner(
        book, FaultInjector(FaultConfig(slow_jobs_ms=40), sleep=sleeps), batch_size=10
    )
    try:
        for index in range(3):
            book.create(NewOrder(order_id=f"o{index}", user_guid="u", unit_id="x"), None)
        run = runner.run("fraud_scan", trigger="manual")
        assert (run["processed"], sleeps.seconds) == (3, [0.04] * 3)
    finally:
        store.close()
