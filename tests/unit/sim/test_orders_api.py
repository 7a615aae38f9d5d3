"""Orders over HTTP: create (idempotent), read, list for followers, input checks."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.sim.api import get_order, post
from tests.unit.sim.conftest import OrderFactory


def test_create_returns_a_pending_batch_order_with_masked_token(client: FlaskClient) -> None:
    """A new order answers 201: pending, batch mode, and the token only masked."""
    status, body = post(
        client,
        "/orders",
        order_id="ord-a",
        user_guid="user-1",
        unit_id="unit-9",
        city="boston",
        amount_cents=1200,
        currency="USD",
        quantity=2,
        payment_token="tok_visa_0000004242",
    )
    assert status == 201
    assert body["order_id"] == "ord-a"
    assert (body["status"], body["processing_mode"]) == ("pending", "batch")
    assert body["payment_token_masked"] == "****4242"
    assert "payment_token" not in body
    assert body["created_at"] == body["updated_at"]
    assert (body["history"], body["vouchers"], body["attempts"]) == ([], [], 0)


def test_create_is_idempotent_on_order_id(client: FlaskClient, make_order: OrderFactory) -> None:
    """The same order_id again answers 200 with the existing order, unchanged."""
    first = make_order(order_id="ord-same", amount_cents=100)
    status, again = post(client, "/orders", order_id="ord-same", user_guid="other", unit_id="u")
    assert status == 200
    assert first == again


def test_create_without_id_assigns_one_and_is_idempotent_on_the_key(client: FlaskClient) -> None:
    """Without an order_id the app assigns one; the same Idempotency-Key returns that order."""
    body = {"user_guid": "user-1", "unit_id": "unit-1"}
    first = client.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
    second = client.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
    third = client.post("/orders", json=body, headers={"Idempotency-Key": "k-2"})
    assert (first.status_code, second.status_code, third.status_code) == (201, 200, 201)
    assert first.get_json()["order_id"].startswith("ord-")
    assert first.get_json()["order_id"] == second.get_json()["order_id"]
    assert first.get_json()["order_id"] != third.get_json()["order_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unit_id": "u"}, "user_guid"),
        ({"user_guid": "g"}, "unit_id"),
        ({"user_guid": "g", "unit_id": "u", "amount_cents": "12"}, "amount_cents"),
        ({"user_guid": "g", "unit_id": "u", "amount_cents": -1}, "amount_cents"),
        ({"user_guid": "g", "unit_id": "u", "quantity": 0}, "quantity"),
        ({"user_guid": "g", "unit_id": "u", "quantity": 101}, "quantity"),
        ({"user_guid": "g", "unit_id": "u", "currency": "usd"}, "currency"),
        ({"user_guid": "g", "unit_id": "u", "order_id": ""}, "order_id"),
        ({"user_guid": "g", "unit_id": "u", "payment_token": 42}, "payment_token"),
    ],
    ids=[
        "no-user",
        "no-unit",
        "amount-string",
        "amount-negative",
        "quantity-zero",
        "quantity-huge",
        "currency-lowercase",
        "empty-id",
        "token-number",
    ],
)
def test_bad_order_fields_are_named(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    """An invalid order answers 400 with an error naming the offending field."""
    status, answer = post(client, "/orders", **body)
    assert status == 400
    assert answer["error"] == "invalid_request"
    assert list(answer["fields"]) == [field]
    assert field in answer["message"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [("not json", "application/json"), ("[1, 2]", "application/json"), ("", "text/plain")],
    ids=["garbage", "array", "empty"],
)
def test_bodies_that_are_not_objects_are_refused(
    client: FlaskClient, data: str, content_type: str
) -> None:
    """A body that is not a JSON object answers 400 naming the body."""
    response = client.post("/orders", data=data, content_type=content_type)
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["body"]


def test_oversized_bodies_are_refused(client: FlaskClient) -> None:
    """A body over 64 KiB answers 413 as JSON."""
    response = client.post("/orders", json={"user_guid": "x" * 70_000, "unit_id": "u"})
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"


def test_unknown_order_is_a_json_404(client: FlaskClient) -> None:
    """Reading an unknown order answers 404 with a JSON error naming it."""
    response = client.get("/orders/ord-missing")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "not_found",
        "message": "no order 'ord-missing'; create it with POST /orders",
        "order_id": "ord-missing",
    }


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    """An unknown path answers 404 as JSON too."""
    response = client.get("/nope")
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


def test_list_is_ordered_by_update_and_inclusive(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """The listing is ordered by updated_at; updated_since includes the order at that instant."""
    ids = [make_order()["order_id"] for _ in range(4)]
    client.post(f"/orders/{ids[0]}/claim")
    everything = client.get("/orders").get_json()["orders"]
    assert [o["order_id"] for o in everything] == [*ids[1:], ids[0]]
    since = everything[1]["updated_at"]
    later = client.get("/orders", query_string={"updated_since": since}).get_json()
    assert [o["order_id"] for o in later["orders"]] == [ids[2], ids[3], ids[0]]
    assert later["has_more"] is False


def test_list_pages_with_has_more(client: FlaskClient, make_order: OrderFactory) -> None:
    """A limit cuts the listing and says there is more."""
    for _ in range(3):
        make_order()
    page = client.get("/orders?limit=2").get_json()
    assert (len(page["orders"]), page["has_more"]) == (2, True)


def test_update_stamps_strictly_increase(client: FlaskClient, make_order: OrderFactory) -> None:
    """No two writes share an updated_at, so a follower can page by it without loss."""
    for _ in range(20):
        make_order()
    stamps = [o["updated_at"] for o in client.get("/orders").get_json()["orders"]]
    assert sorted(set(stamps)) == stamps


def test_list_filters_by_status_and_mode(client: FlaskClient, make_order: OrderFactory) -> None:
    """status and processing_mode filter the listing."""
    claimed = make_order()["order_id"]
    make_order()
    client.post(f"/orders/{claimed}/claim")
    instant = client.get("/orders?processing_mode=instant").get_json()["orders"]
    assert [o["order_id"] for o in instant] == [claimed]
    assert len(client.get("/orders?status=pending").get_json()["orders"]) == 2
    assert client.get("/orders?status=fulfilled").get_json()["orders"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=shipped", "status"),
        ("processing_mode=fast", "processing_mode"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2025-01-01T00:00:00", "updated_since"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
    ],
    ids=["status", "mode", "since-garbage", "since-naive", "limit-zero", "limit-big", "limit-text"],
)
def test_bad_list_filters_are_named(client: FlaskClient, query: str, field: str) -> None:
    """A bad listing filter answers 400 naming the parameter."""
    response = client.get(f"/orders?{query}")
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [field]


def test_updated_since_accepts_an_unescaped_plus(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A '+00:00' offset typed unescaped in a URL (read as a space) still parses."""
    make_order()
    response = client.get("/orders?updated_since=2000-01-01T00:00:00+00:00")
    assert response.status_code == 200
    assert len(response.get_json()["orders"]) == 1


def test_order_survives_reading_back(client: FlaskClient, make_order: OrderFactory) -> None:
    """GET returns what POST answered."""
    created = make_order(city="miami")
    assert created == get_order(client, created["order_id"])
