"""Fixtures for integration tests: real processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.sidecar_support import running_upstream


@pytest.fixture
def legacy_sim_options(request: pytest.FixtureRequest) -> SimOptions:
    """How ``legacy_sim`` starts the simulator: defaults, or a SimOptions given by indirect
    parametrization (``@pytest.mark.parametrize("legacy_sim_options", [SimOptions(...)],
    indirect=True)``); or override this fixture in a module."""
    options: SimOptions = getattr(request, "param", SimOptions())
    return options


@pytest.fixture
def legacy_sim_process(tmp_path: Path, legacy_sim_options: SimOptions) -> Iterator[RunningSim]:
    """A running ``strangler legacy-sim`` with a fresh database, and helpers to drive it."""
    with start_legacy_sim(tmp_path, legacy_sim_options) as sim:
        yield sim


@pytest.fixture
def legacy_sim(legacy_sim_process: RunningSim) -> str:
    """The base URL of a running ``strangler legacy-sim`` with a fresh database."""
    return legacy_sim_process.url


@pytest.fixture(scope="module")
def sim_with_jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """The legacy simulator (order service and legacy app), batch jobs every second, one
    per module."""
    options = SimOptions(job_interval=1.0)
    with start_legacy_sim(tmp_path_factory.mktemp("sim"), options) as running:
        yield running


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the echoing test upstream (upstream_app.py), one per module."""
    with running_upstream(tmp_path_factory.mktemp("upstream")) as url:
        yield url


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A keep-alive client session."""
    with requests.Session() as session:
        yield session
