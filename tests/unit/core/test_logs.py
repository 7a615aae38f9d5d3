"""Logging: payment data never reaches a log line; JSON lines as structlog writes them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import structlog

from strangler.logs import drop_payment_data, render_json


class _Custom:
    def __structlog__(self) -> str:
        return "custom-form"


@pytest.mark.parametrize(
    "event",
    [
        {"event": "order_terminal", "order_id": "o1", "attempt": 0, "status": "fulfilled"},
        {"event": "x", "when": datetime(2026, 1, 2, tzinfo=UTC), "n": 1.5, "none": None},
        {"event": "x", "custom": _Custom(), "nested": {"é": ["ü", 2]}, "nan": float("nan")},
    ],
    ids=["plain", "repr-fallback", "structlog-fallback-and-unicode"],
)
def test_json_lines_are_what_structlog_renders(event: dict[str, object]) -> None:
    """The kept encoder writes the same text as structlog's JSONRenderer with json.dumps."""
    assert structlog.processors.JSONRenderer()(None, "info", dict(event)) == (
        structlog.processors.JSONRenderer(serializer=render_json)(None, "info", dict(event))
    )


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
