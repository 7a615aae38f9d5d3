"""Real processes on loopback: readiness, failure reports, and no process left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from strangler.demo.processes import ServiceDidNotStart, free_port, running


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_running_waits_for_readiness_and_stops_the_process(tmp_path: Path) -> None:
    """The block runs once the URL answers, and the process is gone after it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running(_http_server(port), ready_url=url, log_path=tmp_path / "log") as process:
        assert process.poll() is None
    assert process.returncode is not None


def test_a_process_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    """A process that dies before it is ready raises ServiceDidNotStart with its output."""
    command = [sys.executable, "-c", "import sys; print('boom: bad option'); sys.exit(3)"]
    with (
        pytest.raises(ServiceDidNotStart, match="boom: bad option"),
        running(command, ready_url="http://127.0.0.1:9/", log_path=tmp_path / "log"),
    ):
        pytest.fail("the block must not run")
