"""Small helpers to drive the simulator app through its test client."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def run_job(client: FlaskClient, name: str) -> dict[str, Any]:
    """Run one batch job through the API and return its JobRun."""
    response = client.post(f"/jobs/{name}/run")
    assert response.status_code == 200, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def get_order(client: FlaskClient, order_id: str) -> dict[str, Any]:
    """The order's JSON."""
    response = client.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def post(client: FlaskClient, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
    """POST a JSON body; (status, JSON answer)."""
    response = client.post(path, json=body)
    data: dict[str, Any] = response.get_json()
    return response.status_code, data
