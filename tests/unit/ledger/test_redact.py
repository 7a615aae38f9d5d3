"""Payment data never reaches the ledger."""

from __future__ import annotations

import json

import pytest

from strangler.ledger.redact import MASK, MAX_REJECTED_BODY, mask_body, stored_notification
from tests.unit.ledger.support import make_order


def test_stored_notifications_drop_payment_fields_at_any_depth() -> None:
    """The stored notification has no payment token, even inside extra fields."""
    order = make_order("o-1", payment_token="tok_1", wallet={"card_number": "4111", "kind": "v"})
    assert stored_notification(order) == {
        "order_id": "o-1",
        "user_guid": "user-o-1",
        "unit_id": "unit-7",
        "wallet": {"kind": "v"},
    }


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        (b'{"order_id": 1, "payment_token": "tok_SECRET"}', b"tok_SECRET"),
        (b'[{"card": {"cvv": "987"}}]', b"987"),
        (b"order_id=1&payment_token=tok_SECRET&x=1", b"tok_SECRET"),
        (b'{"payment_token": "tok_SECRET", broken', b"tok_SECRET"),
    ],
    ids=["json-object", "json-nested-list", "form-encoded", "broken-json"],
)
def test_rejected_bodies_have_payment_values_masked(body: bytes, secret: bytes) -> None:
    """Payment values are masked in JSON and in any other text a body may hold."""
    masked = mask_body(body)
    assert secret not in masked
    assert MASK.encode() in masked


def test_bodies_without_payment_data_are_kept_byte_for_byte() -> None:
    """A body with nothing to mask is kept exactly as it arrived."""
    body = b'{ "order_id" : 7 }'
    assert mask_body(body) == body


def test_rejected_bodies_are_cut_at_the_limit() -> None:
    """A huge rejected body is kept up to the limit only."""
    body = json.dumps({"blob": "x" * (2 * MAX_REJECTED_BODY)}).encode()
    assert len(mask_body(body)) == MAX_REJECTED_BODY
