"""Fixtures for integration tests: real processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim


@pytest.fixture
def legacy_sim_options() -> SimOptions:
    """How ``legacy_sim`` starts the simulator; override this fixture (or parametrize it
    indirectly) to change the job interval, batch size, seed, credentials or faults."""
    return SimOptions()


@pytest.fixture
def legacy_sim_process(tmp_path: Path, legacy_sim_options: SimOptions) -> Iterator[RunningSim]:
    """A running ``strangler legacy-sim`` with a fresh database, and helpers to drive it."""
    with start_legacy_sim(tmp_path, legacy_sim_options) as sim:
        yield sim


@pytest.fixture
def legacy_sim(legacy_sim_process: RunningSim) -> str:
    """The base URL of a running ``strangler legacy-sim`` with a fresh database."""
    return legacy_sim_process.url
