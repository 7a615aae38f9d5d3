"""POST /_strangler/notifications: 202 new, 200 duplicate, 400 invalid, 413 too large."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

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
