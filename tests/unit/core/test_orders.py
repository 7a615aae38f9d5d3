"""The order model: validation of notifications, and the records passed between parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import strangler
from strangler import orders
from strangler.exceptions import InvalidNotification
from strangler.orders import (
    TERMINAL_STATUSES,
    Decision,
    OrderNotification,
    OrderStatus,
    Route,
)

VALID = {
    "order_id": "ord-1",
    "user_guid": "user-1",
    "unit_id": "unit-9",
    "city": "nyc",
    "amount_cents": 2500,
    "currency": "USD",
    "quantity": 2,
    "payment_token": "tok_secret",
    "created_at": "2026-11-27T10:00:00Z",
}


def test_valid_notification_keeps_every_field() -> None:
    """A complete notification parses with typed fields and an aware created_at."""
    order = OrderNotification.from_dict(VALID)
    assert (order.order_id, order.user_guid, order.unit_id) == ("ord-1", "user-1", "unit-9")
    assert (order.amount_cents, order.currency, order.quantity) == (2500, "USD", 2)
    assert order.created_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_minimal_notification_needs_only_the_three_ids() -> None:
    """Only order_id, user_guid and unit_id are required."""
    order = OrderNotification.from_dict({"order_id": "a", "user_guid": "b", "unit_id": "c"})
    assert order.city is None
    assert order.to_dict() == {"order_id": "a", "user_guid": "b", "unit_id": "c"}


def test_unknown_fields_are_kept_not_dropped() -> None:
    """Fields the model does not know travel along in extra and back out in to_dict."""
    order = OrderNotification.from_dict({**VALID, "channel": "app", "promo": {"code": "X"}})
    assert dict(order.extra) == {"channel": "app", "promo": {"code": "X"}}
    assert order.to_dict()["promo"] == {"code": "X"}


def test_round_trip_through_json() -> None:
    """to_dict output parses back to an equal notification."""
    order = OrderNotification.from_dict({**VALID, "channel": "app"})
    assert OrderNotification.from_json(json.dumps(order.to_dict())) == order


@pytest.mark.parametrize(
    ("changes", "bad_field"),
    [
        pytest.param({"order_id": None}, "order_id", id="missing-order-id"),
        pytest.param({"user_guid": ""}, "user_guid", id="empty-user"),
        pytest.param({"unit_id": "   "}, "unit_id", id="blank-unit"),
        pytest.param({"order_id": 42}, "order_id", id="int-order-id"),
        pytest.param({"order_id": "x" * 129}, "order_id", id="order-id-too-long"),
        pytest.param({"user_guid": "bad\nguid"}, "user_guid", id="control-char"),
        pytest.param({"amount_cents": -1}, "amount_cents", id="negative-amount"),
        pytest.param({"amount_cents": 1.5}, "amount_cents", id="float-amount"),
        pytest.param({"amount_cents": True}, "amount_cents", id="bool-amount"),
        pytest.param({"quantity": -3}, "quantity", id="negative-quantity"),
        pytest.param({"currency": "usd"}, "currency", id="lowercase-currency"),
        pytest.param({"currency": "EURO"}, "currency", id="four-letter-currency"),
        pytest.param({"city": 7}, "city", id="int-city"),
        pytest.param({"created_at": "yesterday"}, "created_at", id="bad-timestamp"),
        pytest.param({"note": "a\x00b"}, "note", id="nul-in-extra-text"),
        pytest.param({"note": {"k\x00": 1}}, "note", id="nul-in-extra-key"),
        pytest.param({"n\x00te": 1}, "n\\u0000te", id="nul-in-extra-name"),
    ],
)
def test_each_invalid_field_is_named(changes: dict[str, object], bad_field: str) -> None:
    """One bad field gives an InvalidNotification naming exactly that field."""
    data = {**VALID, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InvalidNotification) as caught:
        OrderNotification.from_dict(data)
    assert caught.value.fields == [bad_field]


def test_every_bad_field_is_listed_at_once() -> None:
    """Several bad fields are all reported in one error, sorted, with a readable message."""
    with pytest.raises(InvalidNotification) as caught:
        OrderNotification.from_dict({"order_id": "", "amount_cents": -5, "currency": "x"})
    assert caught.value.fields == ["amount_cents", "currency", "order_id", "unit_id", "user_guid"]
    assert "unit_id: is required" in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [pytest.param(b"{not json", id="broken-json"), pytest.param(b"[1, 2]", id="array")],
)
def test_non_object_bodies_are_rejected_as_body_errors(raw: bytes) -> None:
    """A body that is not a JSON object is reported against the field 'body'."""
    with pytest.raises(InvalidNotification) as caught:
        OrderNotification.from_json(raw)
    assert caught.value.fields == ["body"]


def test_invalid_notification_is_a_value_error() -> None:
    """Callers can catch validation failures as ValueError."""
    with pytest.raises(ValueError, match="order_id"):
        OrderNotification.from_dict({"user_guid": "u", "unit_id": "x"})


def test_payment_token_is_kept_out_of_repr_and_log_fields() -> None:
    """Payment data never reaches repr() or the fields meant for logs."""
    order = OrderNotification.from_dict(VALID)
    assert "tok_secret" not in repr(order)
    assert "payment_token" not in order.log_fields()
    assert order.to_dict()["payment_token"] == "tok_secret"


def test_decision_serialises_path_as_its_name() -> None:
    """A Decision's JSON form carries the path name and every field the story shows."""
    decision = Decision(Route.INSTANT, "instant", 25, "rev-1", "in_rollout")
    assert decision.to_dict() == {
        "path": "instant",
        "variant": "instant",
        "rollout": 25,
        "flag_revision": "rev-1",
        "reason": "in_rollout",
    }


def test_terminal_statuses_are_exactly_the_four_outcomes() -> None:
    """Only fulfilled, rejected_fraud, payment_declined and failed are terminal."""
    assert {s.value for s in TERMINAL_STATUSES} == {
        "fulfilled",
        "rejected_fraud",
        "payment_declined",
        "failed",
    }
    assert not OrderStatus.FELL_BACK.is_terminal
    assert OrderStatus.FAILED.is_terminal


def test_the_old_path_name_still_works_with_a_deprecation_warning() -> None:
    """The old name ``Path`` is Route for one release, with a warning, at both addresses."""

    with pytest.warns(DeprecationWarning, match="renamed Route"):
        assert orders.Path is Route
    with pytest.warns(DeprecationWarning, match="renamed Route"):
        assert strangler.Path is Route
