"""Cross-site writes are refused on every write endpoint; server-to-server calls pass."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRuntime

ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"}
CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
]
CROSS_SITE_IDS = ["foreign-origin", "cross-site", "same-site", "both"]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def write_endpoints(app: Flask) -> list[tuple[str, str]]:
    """Every (method, path) of the app that writes, path variables filled in."""
    return sorted(
        (method, re.sub(r"<(?:\w+:)?\w+>", "x", rule.rule))
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) & WRITES
    )


def test_the_app_has_write_endpoints(app: Flask) -> None:
    """The table below is not empty: the notifications intake is among the writes."""
    assert ("POST", "/_strangler/notifications") in write_endpoints(app)


@pytest.mark.parametrize("headers", CROSS_SITE, ids=CROSS_SITE_IDS)
def test_every_write_endpoint_refuses_a_cross_site_write(
    app: Flask, client: FlaskClient, runtime: FakeRuntime, headers: dict[str, str]
) -> None:
    """A write a browser marks as cross-site is a 403 JSON error, even with the token."""
    answers = {
        (method, path): client.open(path, method=method, json=ORDER, headers={**AUTH, **headers})
        for method, path in write_endpoints(app)
    }
    refused = {
        key: (answer.status_code, (answer.get_json(silent=True) or {}).get("error"))
        for key, answer in answers.items()
    }
    assert refused == dict.fromkeys(answers, (403, "cross_site_write"))
    assert runtime.router.taken == []  # nothing was stored


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
    ids=["server-to-server", "same-origin", "typed-by-user"],
)
def test_notifications_from_a_server_or_this_origin_are_taken_in(
    client: FlaskClient, runtime: FakeRuntime, headers: dict[str, str]
) -> None:
    """No browser headers (a server), or this host's own page: the order is taken in (202)."""
    answer = client.post("/_strangler/notifications", json=ORDER, headers={**AUTH, **headers})
    assert (answer.status_code, [o.order_id for o, _ in runtime.router.taken]) == (202, ["o-1"])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/_strangler/healthz", 200),
        ("POST", "/_strangler/notifications", 202),
        ("POST", "/_strangler/notifications", 403),
        ("GET", "/anything/proxied", 200),
        ("GET", "/_strangler/no-such-page", 404),
    ],
    ids=["flask", "lean-intake", "lean-intake-refused", "proxied", "not-found"],
)
def test_every_answer_says_nosniff(
    client: FlaskClient, method: str, path: str, expected: int
) -> None:
    """X-Content-Type-Options: nosniff on Flask's, the lean intake's and the proxy's answers."""
    headers = {**AUTH, **({"Origin": "http://evil.example"} if expected == 403 else {})}
    answer = client.open(path, method=method, json=ORDER, headers=headers, buffered=True)
    assert answer.status_code == expected
    assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"]
