"""Fixtures for simulator tests: the Flask app on a temporary database, no scheduler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.sim import SimConfig, create_app, simulator
from strangler.sim.rules import Rules

OrderFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def sim_config(tmp_path: Path) -> SimConfig:
    """A config with a fresh database, jobs only on demand, and one blocked user."""
    return SimConfig(
        db_path=tmp_path / "sim.sqlite3",
        scheduler=False,
        seed=3,
        rules=Rules(blocked_users=frozenset({"user-blocked"}), max_attempts=3),
    )


@pytest.fixture
def app(sim_config: SimConfig) -> Iterator[Flask]:
    """The simulator app; its database is closed afterwards."""
    app = create_app(sim_config)
    yield app
    simulator(app).stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def make_order(client: FlaskClient) -> OrderFactory:
    """Create an order through the API and return its JSON (defaults fill required fields)."""
    counter = iter(range(1, 1_000_000))

    def make(**fields: Any) -> dict[str, Any]:
        body = {
            "order_id": f"ord-{next(counter)}",
            "user_guid": "user-1",
            "unit_id": "unit-1",
            "amount_cents": 2500,
            "quantity": 1,
            "payment_token": "tok_visa_4242",
            **fields,
        }
        response = client.post("/orders", json={k: v for k, v in body.items() if v is not None})
        assert response.status_code == 201, response.get_json()
        data: dict[str, Any] = response.get_json()
        return data

    return make
