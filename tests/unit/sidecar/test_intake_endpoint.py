"""POST /_strangler/notifications: 202 new, 200 duplicate, 400 invalid, 413 too large."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRuntime

URL = "/_strangler/notifications"
ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1", "city": "nyc"}


def test_new_order_is_accepted(client: FlaskClient, runtime: FakeRuntime) -> None:
    """A valid new notification is taken in and answered 202."""
    response = client.post(URL, json=ORDER, headers=AUTH)
    assert (response.status_code, response.json) == (202, {"order_id": "o-1", "duplicate": False})
    assert [(o.order_id, s) for o, s in runtime.router.taken] == [("o-1", "notifications")]


def test_duplicate_is_answered_200(client: FlaskClient) -> None:
    """The same order again is answered 200 and flagged as a duplicate."""
    client.post(URL, json=ORDER, headers=AUTH)
    response = client.post(URL, json=ORDER, headers=AUTH)
    assert (response.status_code, response.json["duplicate"]) == (200, True)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (json.dumps({"order_id": "o-1"}), {"user_guid", "unit_id"}),
        (json.dumps({**ORDER, "quantity": -1, "currency": "usd"}), {"quantity", "currency"}),
        ("{not json", {"body"}),
        ("[]", {"body"}),
    ],
    ids=["missing-fields", "bad-values", "not-json", "not-object"],
)
def test_invalid_notification_names_fields_and_is_kept(
    client: FlaskClient, runtime: FakeRuntime, body: str, fields: set[str]
) -> None:
    """An invalid notification gets a 400 naming each field; its raw body is kept."""
    response = client.post(URL, data=body, headers=AUTH, content_type="application/json")
    assert (response.status_code, response.json["error"]) == (400, "invalid_notification")
    assert fields == set(response.json["fields"])
    assert [(body.encode(), "notifications")] == [(r, s) for r, _, s in runtime.ledger.rejected]


def test_body_over_the_limit_is_413(client: FlaskClient, runtime: FakeRuntime) -> None:
    """A body over 64 KiB is refused with 413 before it is parsed."""
    body = json.dumps({**ORDER, "note": "x" * 70_000})
    response = client.post(URL, data=body, headers=AUTH, content_type="application/json")
    assert (response.status_code, runtime.router.taken) == (413, [])
    assert "limit is 65536 bytes" in response.json["message"]


def test_ledger_down_is_503(client: FlaskClient, runtime: FakeRuntime) -> None:
    """When the ledger cannot be written the sender is told to retry (503)."""
    runtime.ledger.broken = True
    response = client.post(URL, json=ORDER, headers=AUTH)
    assert (response.status_code, response.json["error"]) == (503, "ledger_unavailable")


def test_answer_is_the_json_flask_would_write(client: FlaskClient) -> None:
    """The lean intake answers with the bytes and headers Flask's jsonify would give."""
    response = client.post(URL, json=ORDER, headers=AUTH)
    assert (response.data, response.mimetype, response.headers["Content-Length"]) == (
        b'{"duplicate":false,"order_id":"o-1"}\n',
        "application/json",
        "37",
    )


def test_body_without_length_is_read_when_the_server_ends_it(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """A chunked body (no Content-Length; the server marks the input terminated) is read."""
    response = client.post(
        URL,
        data=json.dumps(ORDER).encode(),
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        content_type="application/json",
    )
    assert (response.status_code, [o.order_id for o, _ in runtime.router.taken]) == (202, ["o-1"])


def test_chunked_body_over_the_limit_is_413(client: FlaskClient, runtime: FakeRuntime) -> None:
    """A chunked body over the limit is refused with 413 after reading one byte past it."""
    body = json.dumps({**ORDER, "note": "x" * 70_000}).encode()
    response = client.post(
        URL,
        data=body,
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        content_type="application/json",
    )
    assert (response.status_code, response.json["message"], runtime.router.taken) == (
        413,
        "the body is over the limit of 65536 bytes",
        [],
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_naming_post(client: FlaskClient, method: str) -> None:
    """Only POST takes notifications in; other methods get 405 with an Allow header."""
    response = client.open(URL, method=method, headers=AUTH)
    assert (response.status_code, "POST" in response.headers["Allow"]) == (405, True)


def test_access_log_carries_the_order_id(client: FlaskClient) -> None:
    """Each intake request writes one access-log line with its status and order_id."""
    with capture_logs() as logs:
        client.post(URL, json=ORDER, headers=AUTH)
    requests = [entry for entry in logs if entry["event"] == "request"]
    assert [(r["path"], r["status"], r["order_id"]) for r in requests] == [(URL, 202, "o-1")]


def test_unexpected_failure_is_a_json_500(client: FlaskClient, runtime: FakeRuntime) -> None:
    """A bug while taking a notification in is answered 500 in JSON and logged."""

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    runtime.router.intake = crash  # type: ignore[method-assign,assignment]
    with capture_logs() as logs:
        response = client.post(URL, json=ORDER, headers=AUTH)
    assert (response.status_code, response.json["error"]) == (500, "internal_server_error")
    assert [e["order_id"] for e in logs if e["event"] == "intake_failed"] == ["o-1"]
