"""Logging: payment data never reaches a log line."""

from __future__ import annotations

from strangler.logs import drop_payment_data


def test_payment_fields_are_redacted_at_any_depth() -> None:
    """Top-level and nested payment fields are replaced, other fields untouched."""
    event = {
        "event": "order_received",
        "order_id": "o1",
        "payment_token": "tok_live",
        "order": {"payment_token": "tok_live", "nested": {"card_number": "4111"}},
    }
    cleaned = drop_payment_data(None, "info", event)
    assert cleaned["payment_token"] == "[redacted]"
    assert cleaned["order"] == {
        "payment_token": "[redacted]",
        "nested": {"card_number": "[redacted]"},
    }
    assert cleaned["order_id"] == "o1"
