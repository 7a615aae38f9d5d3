"""Logging: payment data never reaches a log line; JSON lines as structlog writes them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from strangler import logs
from strangler.logs import configure_logging, drop_payment_data, json_line, render_json


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


_CHAIN: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    drop_payment_data,
    structlog.processors.format_exc_info,
    structlog.processors.JSONRenderer(),
]


def _chained(method: str, event: dict[str, object]) -> object:
    rendered: object = event
    for processor in _CHAIN:
        rendered = processor(None, method, rendered)
    return rendered


def _raised() -> tuple[type[BaseException], BaseException, object]:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return type(exc), exc, exc.__traceback__


@pytest.mark.parametrize(
    ("method", "event"),
    [
        ("info", {"order_id": "o1", "attempt": 0, "event": "order_terminal", "status": "done"}),
        ("warning", {"event": "x", "payment_token": "tok", "order": {"card": {"cvv": "1"}}}),
        ("exception", {"event": "x", "exc_info": True}),
        ("error", {"event": "x", "exc_info": "raised"}),
        ("debug", {"event": "x", "custom": _Custom(), "when": datetime(2026, 1, 2, tzinfo=UTC)}),
        ("info", {"event": "x", "bound": "given here wins"}),
    ],
    ids=["plain", "payment", "exc-info-true", "exc-info-tuple", "fallbacks", "contextvars"],
)
def test_json_line_is_the_chain_in_one(
    method: str, event: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """json_line writes the line the six processors write one after the other, but for
    the timestamp's microseconds (both read the clock): same keys, order and values."""
    if event.get("exc_info") == "raised":
        event = {**event, "exc_info": _raised()}
    structlog.contextvars.bind_contextvars(request="r-1", bound="from the context")
    try:
        raised = _raised()
        try:
            raise raised[1]
        except ValueError:  # exc_info=True reads the exception being handled
            ours = json.loads(json_line(None, method, dict(event)))
            theirs = json.loads(str(_chained(method, dict(event))))
    finally:
        structlog.contextvars.clear_contextvars()
    assert list(ours) == list(theirs)
    for stamp in (ours.pop("timestamp"), theirs.pop("timestamp")):
        assert stamp.endswith("Z")
        assert abs(datetime.fromisoformat(stamp[:-1] + "+00:00") - datetime.now(UTC)).seconds < 60
    assert ours == theirs


def test_configured_json_lines_use_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    """configure_logging("json") writes each line through json_line, one JSON object each."""
    configure_logging("json")  # the conftest fixture puts the configuration back
    assert structlog.get_config()["processors"] == [json_line]
    structlog.get_logger().bind(order_id="o1").info("order_terminal", payment_token="tok")
    line = json.loads(capsys.readouterr().err)
    assert list(line) == ["order_id", "payment_token", "event", "level", "timestamp"]
    assert line["payment_token"] == "[redacted]"


@pytest.mark.parametrize(
    "nanoseconds",
    [
        1_765_110_787_000_000_000,  # a whole second: no fraction, as isoformat writes it
        1_765_110_787_000_000_999,  # under a microsecond: floored to none
        1_765_110_787_123_456_789,
        1_765_110_788_000_001_000,  # the next second: its text is made afresh
        1_767_225_599_999_999_999,  # the last microsecond of 2025
        1_767_225_600_000_000_000,
        1_765_110_787_500_000_000,  # back to an earlier second
    ],
)
def test_utc_stamp_is_timestampers_text(nanoseconds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """utc_stamp writes TimeStamper(fmt="iso", utc=True)'s text for the same instant
    (datetime.now floors the clock to the microsecond)."""
    monkeypatch.setattr(time, "time_ns", lambda: nanoseconds)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    assert logs.utc_stamp() == moment.isoformat().replace("+00:00", "Z")


def test_utc_stamp_follows_the_clock() -> None:
    """Stamps taken around TimeStamper's are ordered with it (the same clock)."""
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    stamps = [logs.utc_stamp(), stamper(None, "info", {})["timestamp"], logs.utc_stamp()]
    moments = [datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in stamps]
    assert moments == sorted(moments)
