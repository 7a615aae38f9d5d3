"""The admin bearer token guarding write and admin endpoints."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.sidecar.conftest import TOKEN

GUARDED = [
    ("POST", "/_strangler/notifications"),
    ("GET", "/_strangler/rollout"),
    ("PUT", "/_strangler/rollout"),
]
GUARDED_IDS = ["notifications", "rollout-get", "rollout-put"]


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=GUARDED_IDS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", TOKEN],
    ids=["none", "wrong", "basic", "longer", "empty", "no-scheme"],
)
def test_wrong_or_missing_token_is_401(
    client: FlaskClient, method: str, path: str, authorization: str | None
) -> None:
    """Without the right bearer token a guarded endpoint answers 401 and does nothing."""
    headers = {"Authorization": authorization} if authorization else {}
    response = client.open(path, method=method, json={}, headers=headers)
    assert (response.status_code, response.json["error"]) == (401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="strangler"'


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=GUARDED_IDS)
def test_unset_token_refuses_everyone_and_says_how_to_set_it(
    make_app: Callable[..., Flask], method: str, path: str
) -> None:
    """With no STRANGLER_ADMIN_TOKEN, guarded endpoints answer 503 explaining the fix."""
    with make_app(admin_token=None).test_client() as client:
        response = client.open(path, method=method, json={}, headers={"Authorization": "Bearer "})
    assert response.status_code == 503
    assert "STRANGLER_ADMIN_TOKEN=" in response.json["message"]


def test_token_is_compared_in_constant_time(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The presented token is checked with hmac.compare_digest, not ==."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    response = client.get("/_strangler/rollout", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert [(TOKEN.encode(), TOKEN.encode())] == compared


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_strangler/healthz"),
        ("GET", "/_strangler/decide?order_id=o&user_guid=u&unit_id=n"),
        ("GET", "/metrics"),
    ],
    ids=["healthz", "decide", "metrics"],
)
def test_read_endpoints_need_no_token(client: FlaskClient, method: str, path: str) -> None:
    """Reads are open: health, decisions and metrics answer without a token."""
    assert client.open(path, method=method).status_code == 200
