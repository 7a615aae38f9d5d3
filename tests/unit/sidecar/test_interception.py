"""Which answers carry an order, and how the notification is read from them."""

from __future__ import annotations

import json

import pytest

from strangler.exceptions import ConfigurationError, InvalidNotification
from strangler.sidecar.interception import FieldMapping, OrderRoute, notification_from_answer


@pytest.mark.parametrize(
    ("spec", "method", "path", "matches"),
    [
        ("POST /orders", "POST", "/orders", True),
        ("POST /orders", "POST", "/orders/", True),
        ("post /orders/", "POST", "/orders", True),
        ("POST /orders", "GET", "/orders", False),
        ("POST /orders", "POST", "/orders/1", False),
        ("PUT /api/v2/orders", "PUT", "/api/v2/orders", True),
    ],
    ids=["exact", "trailing-slash", "lowercase-spec", "other-method", "sub-path", "custom"],
)
def test_order_route_matches(spec: str, method: str, path: str, matches: bool) -> None:
    """The route matches its method and path only, ignoring a trailing slash."""
    assert matches == OrderRoute.parse(spec).matches(method, path)


@pytest.mark.parametrize("spec", ["/orders", "POST orders", "FETCH /orders", "POST /a /b"])
def test_bad_order_route_names_the_setting(spec: str) -> None:
    """A malformed route is refused with the setting's name and an example."""
    with pytest.raises(ConfigurationError, match="STRANGLER_ORDER_ROUTE must look like 'POST"):
        OrderRoute.parse(spec)


@pytest.mark.parametrize("item", ["order_id", "=id", "order_id=", "user_guid=customer..guid"])
def test_bad_field_mapping_names_the_setting(item: str) -> None:
    """A malformed mapping item is refused with the setting's name and the item."""
    with pytest.raises(ConfigurationError, match="STRANGLER_ORDER_FIELDS"):
        FieldMapping.parse([item])


def test_answer_fields_are_taken_by_name_without_a_mapping() -> None:
    """With no mapping, the answer is the notification itself (extra fields kept)."""
    answer = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1", "status": "pending"}
    order = notification_from_answer(json.dumps(answer).encode(), FieldMapping())
    assert (
        order.order_id,
        order.user_guid,
        order.unit_id,
        dict(order.extra),
    ) == ("o-1", "u-1", "n-1", {"status": "pending"})


def test_mapping_reads_dotted_paths_and_numbers_ids() -> None:
    """Mapped fields come from dotted paths, and numeric ids become strings."""
    mapping = FieldMapping.parse(["order_id=id", "user_guid=customer.guid", "unit_id=deal.unit"])
    answer = {"id": 1042, "customer": {"guid": "u-9"}, "deal": {"unit": 7}, "city": "nyc"}
    order = notification_from_answer(json.dumps(answer).encode(), mapping)
    assert (
        order.order_id,
        order.user_guid,
        order.unit_id,
        order.city,
    ) == ("1042", "u-9", "7", "nyc")


def test_missing_mapped_field_names_its_source() -> None:
    """An answer without a mapped field is invalid, naming where the field was looked for."""
    mapping = FieldMapping.parse(["user_guid=customer.guid"])
    answer = {"order_id": "o-1", "unit_id": "n-1", "customer": {}}
    with pytest.raises(InvalidNotification) as caught:
        notification_from_answer(json.dumps(answer).encode(), mapping)
    assert caught.value.errors == {"user_guid": "is required (read from 'customer.guid')"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"<html>", "not valid JSON"), (b"[1, 2]", "must be a JSON object")],
    ids=["not-json", "not-object"],
)
def test_unreadable_answer_is_invalid(body: bytes, problem: str) -> None:
    """An answer that is not a JSON object is invalid, with the reason under ``body``."""
    with pytest.raises(InvalidNotification) as caught:
        notification_from_answer(body, FieldMapping())
    assert problem in caught.value.errors["body"]
