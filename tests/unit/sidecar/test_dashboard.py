"""The dashboard page and the cross-site write refusal, on the app with fakes."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.unit.sidecar.conftest import AUTH

URL = "/_strangler/rollout"
CHANGE = {"percentage": 5, "reason": "numbers hold"}


def test_page_inlines_its_script_under_a_nonce_and_forbids_framing(client: FlaskClient) -> None:
    """The page carries its script and style inline, allowed only by this answer's nonce."""
    response = client.get("/_strangler/")
    page = response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}"' in page
    assert "sessionStorage" in page
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"


def test_page_holds_no_admin_data_and_no_token(client: FlaskClient) -> None:
    """The page needs no token and shows no rollout figures until the script fetches them."""
    page = client.get("/_strangler/").get_data(as_text=True)
    assert '<dd id="rollout-percentage">?</dd>' in page
    assert "s3cret-token" not in page


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost.evil", "Sec-Fetch-Site": "same-origin"},
    ],
    ids=["foreign-origin", "cross-site", "same-site", "origin-despite-fetch-site"],
)
def test_cross_site_writes_are_refused_with_403(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    """A write a browser marks as coming from another site is refused before the token check."""
    response = client.put(URL, json=CHANGE, headers={**AUTH, **headers})
    assert (response.status_code, response.json["error"]) == (403, "cross_site_write")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
    ids=["no-browser-headers", "same-origin", "typed-by-user"],
)
def test_same_origin_and_non_browser_writes_pass(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    """Writes from this host's page, or from non-browser clients, reach the token check."""
    response = client.put(URL, json=CHANGE, headers={**AUTH, **headers})
    assert response.status_code == 200


def test_cross_site_reads_are_not_refused_by_origin(client: FlaskClient) -> None:
    """Only writes are checked; a read still needs the token as before."""
    response = client.get(URL, headers={"Origin": "http://evil.example"})
    assert response.status_code == 401
