"""Optional credentials: a bearer token or basic auth on every route but /healthz."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from strangler.sim import SimConfig, create_app, simulator


def _client(tmp_path: Path, **credentials: object) -> Iterator[FlaskClient]:
    config = SimConfig(db_path=tmp_path / "auth.sqlite3", scheduler=False, **credentials)  # type: ignore[arg-type]
    app = create_app(config)
    yield app.test_client()
    simulator(app).stop()


@pytest.fixture
def bearer(tmp_path: Path) -> Iterator[FlaskClient]:
    """A simulator that wants the bearer token ``t0ken``."""
    yield from _client(tmp_path, token="t0ken")


@pytest.fixture
def basic(tmp_path: Path) -> Iterator[FlaskClient]:
    """A simulator that wants basic credentials ops:pw."""
    yield from _client(tmp_path, basic_auth=("ops", "pw"))


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer nope", 401), ("Basic dDBrZW4=", 401), ("Bearer t0ken", 200)],
    ids=["none", "wrong-token", "wrong-scheme", "right"],
)
def test_bearer_token(bearer: FlaskClient, header: str | None, status: int) -> None:
    """Only the configured bearer token gets through; others get a JSON 401."""
    headers = {"Authorization": header} if header else {}
    response = bearer.get("/orders", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("pair", "status"), [(b"ops:pw", 200), (b"ops:no", 401)], ids=["right", "wrong"]
)
def test_basic_auth(basic: FlaskClient, pair: bytes, status: int) -> None:
    """Basic credentials are checked; the challenge names the scheme."""
    header = "Basic " + base64.b64encode(pair).decode()
    response = basic.get("/jobs", headers={"Authorization": header})
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_health_needs_no_credentials(bearer: FlaskClient) -> None:
    """/healthz answers without credentials, so supervisors can probe it."""
    assert bearer.get("/healthz").status_code == 200


def test_fault_control_needs_credentials(bearer: FlaskClient) -> None:
    """/_sim/faults is protected like the rest."""
    assert bearer.put("/_sim/faults", json={"error_rate": 1}).status_code == 401


def test_a_config_with_both_credentials_is_refused(tmp_path: Path) -> None:
    """A token and basic auth together are refused."""
    with pytest.raises(ValueError, match="not both"):
        SimConfig(db_path=tmp_path / "x", token="t", basic_auth=("u", "p"))
