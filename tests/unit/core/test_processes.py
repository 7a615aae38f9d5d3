"""Real processes on loopback: readiness, failure reports, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from strangler.demo.processes import ServiceDidNotStart, free_port, running
from tests.helpers import wait_until


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


_HOLDER = """
import sys, time
from pathlib import Path
from strangler.demo.processes import exit_on_sigterm, running
if sys.argv[1] == "exit":
    exit_on_sigterm()
command = [sys.executable, "-m", "http.server", sys.argv[2], "--bind", "127.0.0.1"]
url = f"http://127.0.0.1:{sys.argv[2]}/"
with running(command, ready_url=url, log_path=Path(sys.argv[3])) as process:
    print(process.pid, flush=True)
    for _ in range(1200):  # short sleeps: a signal handler runs within 0.1 s of its signal
        time.sleep(0.1)
"""


@pytest.mark.parametrize(("handler", "left_behind"), [("exit", False), ("default", True)])
def test_sigterm_stops_the_processes_a_running_block_started(
    tmp_path: Path, handler: str, left_behind: bool
) -> None:
    """With exit_on_sigterm, a SIGTERM'd program stops its processes; by default it orphans them."""
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, handler, str(port), str(tmp_path / "log")],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        child = int(holder.stdout.readline())
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(timeout=30) == (143 if handler == "exit" else -signal.SIGTERM)
    try:
        if left_behind:
            assert _alive(child), "nothing stops the server once its program is gone"
        else:
            wait_until(lambda: not _alive(child), 10, f"the http.server {child} to stop")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
