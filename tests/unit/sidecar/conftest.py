"""Fixtures for the sidecar unit tests: an app wired to hand-written fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from strangler.settings import Settings
from strangler.sidecar.app import create_app
from strangler.sidecar.state import SidecarState, sidecar_state
from tests.unit.sidecar.fakes import FakePool, FakeRollout, FakeRuntime
from tests.unit.sidecar.sns_signing import TOPIC_ARN, SnsSigner

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def signer() -> SnsSigner:
    """One self-signed SNS signing identity for the whole run (RSA keys are slow to make)."""
    return SnsSigner()


@pytest.fixture
def runtime() -> FakeRuntime:
    """A fake runtime: in-memory ledger, router and flag source."""
    return FakeRuntime()


@pytest.fixture
def rollout(runtime: FakeRuntime) -> FakeRollout:
    """A fake rollout controller, recording on the fake runtime's ledger as the app wires it."""
    return FakeRollout(timeline=runtime.ledger)


@pytest.fixture
def pool() -> FakePool:
    """A fake upstream answering 200 with a small JSON body."""
    return FakePool()


@pytest.fixture
def fetched() -> list[str]:
    """The certificate URLs the app fetched."""
    return []


@pytest.fixture
def confirmed() -> list[str]:
    """The SubscribeURLs the app confirmed."""
    return []


@pytest.fixture
def make_app(
    runtime: FakeRuntime,
    rollout: FakeRollout,
    pool: FakePool,
    signer: SnsSigner,
    fetched: list[str],
    confirmed: list[str],
) -> Callable[..., Flask]:
    """Build a sidecar app on the fakes; keyword arguments change settings."""

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return signer.pem

    def build(cert_fetcher: Callable[[str], bytes] = fetch, **changes: Any) -> Flask:
        settings = Settings(
            upstream_url="http://upstream.test:8000",
            admin_token=TOKEN,
            sns_topic_arns=(TOPIC_ARN,),
        )
        settings = dataclasses.replace(settings, **changes)
        return create_app(
            settings,
            runtime=runtime,
            rollout=rollout,
            upstream_pool=pool,
            cert_fetcher=cert_fetcher,
            subscription_confirmer=confirmed.append,
            readiness_probe=lambda _url: None,
        )

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The sidecar app with default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    """A test client of ``app``."""
    with app.test_client() as client:
        yield client


@pytest.fixture
def state(app: Flask) -> SidecarState:
    """The sidecar state of ``app``."""
    return sidecar_state(app)
