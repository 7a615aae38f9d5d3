"""Order-creation interception: 2xx answers to the order route are durable before they are sent."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from tests.unit.sidecar.fakes import FakeAnswer, FakePool, FakeRuntime

ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1", "payment_token": "tok"}


def answer(status: int = 201, body: object = ORDER, **kwargs: object) -> FakeAnswer:
    """An upstream answer carrying ``body`` as JSON."""
    return FakeAnswer(status=status, body=json.dumps(body).encode(), **kwargs)  # type: ignore[arg-type]


def test_created_order_is_taken_in_and_answer_unchanged(
    client: FlaskClient, pool: FakePool, runtime: FakeRuntime
) -> None:
    """A 201 to POST /orders reaches the client as is, and the order is taken in."""
    pool.answer = answer()
    response = client.post("/orders", json={"deal": 1}, buffered=True)
    assert (response.status_code, response.json) == (201, ORDER)
    assert [(o.order_id, s) for o, s in runtime.router.taken] == [("o-1", "proxy")]


def test_order_is_durable_before_the_client_sees_the_answer(
    app: Flask, pool: FakePool, runtime: FakeRuntime
) -> None:
    """The order is taken in before the answer's first byte reaches the client."""
    pool.answer = answer(content_length=False)
    with app.test_client() as client:
        response = client.post("/orders", json={}, buffered=False)
        taken_at_headers = [o.order_id for o, _ in runtime.router.taken]
        body = b"".join(response.response)
        response.close()
    assert (taken_at_headers, json.loads(body)) == (["o-1"], ORDER)
    assert [o.order_id for o, _ in runtime.router.taken] == ["o-1"]


def test_ledger_down_still_answers_and_counts_the_miss(
    client: FlaskClient, pool: FakePool, runtime: FakeRuntime
) -> None:
    """When the ledger refuses the order, the client still gets the 201, and the miss is counted."""
    pool.answer = answer()
    runtime.router.fail_times = 1
    with capture_logs() as logs:
        response = client.post("/orders", json={}, buffered=True)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (response.status_code, response.json) == (201, ORDER)
    assert 'strangler_intake_missed_total{source="proxy"} 1.0' in metrics
    assert [e["order_id"] for e in logs if e["event"] == "intake_missed"] == ["o-1"]


def test_invalid_answer_goes_to_the_rejected_table(
    client: FlaskClient, pool: FakePool, runtime: FakeRuntime
) -> None:
    """A 2xx answer that is not a valid notification is kept with the reason; client unaffected."""
    pool.answer = answer(body={"order_id": "o-2"})
    response = client.post("/orders", json={}, buffered=True)
    ((raw, reason, source),) = runtime.ledger.rejected
    assert (response.status_code, runtime.router.taken, source) == (201, [], "proxy")
    assert json.loads(raw) == {"order_id": "o-2"}
    assert "user_guid: is required" in reason


def test_oversized_answer_is_passed_on_and_recorded_as_rejected(
    make_app: Callable[..., Flask], pool: FakePool, runtime: FakeRuntime
) -> None:
    """An answer over the tee limit reaches the client whole; the order is noted as unreadable."""
    big = {**ORDER, "padding": "x" * (1024 * 1024)}
    pool.answer = answer(body=big, content_length=False)
    with make_app().test_client() as client:
        response = client.post("/orders", json={}, buffered=True)
    ((_, reason, _),) = runtime.ledger.rejected
    assert (big, []) == (response.json, runtime.router.taken)
    assert "could not be read whole" in reason


def test_other_routes_and_failures_are_not_intercepted(
    client: FlaskClient, pool: FakePool, runtime: FakeRuntime
) -> None:
    """Non-2xx answers, other methods and other paths are never taken in."""
    pool.answer = answer(status=422)
    client.post("/orders", json={}, buffered=True)
    pool.answer = answer(status=200)
    client.get("/orders", buffered=True)
    client.post("/orders/o-1/cancel", json={}, buffered=True)
    assert (runtime.router.taken, runtime.ledger.rejected) == ([], [])


def test_configured_route_and_mapping_are_used(
    make_app: Callable[..., Flask], pool: FakePool, runtime: FakeRuntime
) -> None:
    """STRANGLER_ORDER_ROUTE and STRANGLER_ORDER_FIELDS choose the request and the fields."""
    app = make_app(
        order_route="PUT /api/checkout", order_fields=("order_id=id", "user_guid=user.guid")
    )
    pool.answer = answer(status=200, body={"id": 77, "user": {"guid": "u-7"}, "unit_id": "n-7"})
    with app.test_client() as client:
        client.put("/api/checkout", json={}, buffered=True)
    assert [(o.order_id, o.user_guid) for o, _ in runtime.router.taken] == [("77", "u-7")]


def test_access_log_carries_the_intercepted_order_id(client: FlaskClient, pool: FakePool) -> None:
    """The access log line of an intercepted answer names its order, never its payment data."""
    pool.answer = answer()
    with capture_logs() as logs:
        client.post("/orders", json={}, buffered=True)
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert (line["order_id"], line["status"], line["upstream"]) == ("o-1", 201, True)
    assert "tok" not in repr(logs)


def test_client_leaving_early_does_not_lose_the_order(
    app: Flask, pool: FakePool, runtime: FakeRuntime
) -> None:
    """If the client hangs up before reading the answer, the order is in the ledger already."""
    pool.answer = answer(body={**ORDER, "padding": "x" * 300_000}, content_length=False)
    with app.test_client() as client:
        response = client.post("/orders", json={}, buffered=False)
        response.close()
    assert [o.order_id for o, _ in runtime.router.taken] == ["o-1"]
