"""Shared test helpers: service requirements, free ports, real processes on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "STRANGLER_TEST_PG_URL", "postgresql+psycopg://strangler:strangler@127.0.0.1:5432/strangler"
)


def require(condition: bool, reason: str) -> None:
    """Skip the test when a service is missing, but fail under CI=true, where it must exist."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_node() -> str:
    """The node binary, after checking the npm packages `make test` installs are there."""
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed")
    require(
        (REPO_ROOT / "node_modules").is_dir(),
        "node_modules is missing: run `make test` (it runs `npm ci`)",
    )
    assert node is not None
    return node


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 50 ms until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def http_ok(url: str) -> Callable[[], bool]:
    """A check that ``url`` answers with a 2xx."""

    def check() -> bool:
        try:
            return requests.get(url, timeout=0.5).ok
        except requests.RequestException:
            return False

    return check


@contextmanager
def running_process(
    args: Sequence[str],
    *,
    ready_url: str,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a real process until the block ends; wait for ``ready_url`` to answer 2xx first.

    The process gets SIGTERM at the end (SIGKILL after 10 s); its output goes to
    ``log_path`` and is shown when it fails to become ready.
    """
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"proc-{uuid.uuid4().hex}.log"
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO_ROOT
        )
    try:
        deadline = time.monotonic() + timeout
        while not http_ok(ready_url)():
            if proc.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"{args[0]} did not become ready at {ready_url}:\n{output}")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def strangler_cmd(*args: str) -> list[str]:
    """The command line that runs the strangler CLI with this interpreter."""
    return [sys.executable, "-m", "strangler", *args]
