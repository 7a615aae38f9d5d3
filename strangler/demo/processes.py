"""Real processes on loopback: free ports, readiness, and a clean stop.

Used by ``strangler demo``, the benchmarks and the integration tests, which all run the
simulator, the sidecar and their peers as separate processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from strangler.exceptions import StranglerError

__all__ = [
    "ServiceDidNotStart",
    "exit_on_sigterm",
    "free_port",
    "running",
    "stop",
    "wait_until_ready",
]

_LOG_TAIL_CHARS = 4000


class ServiceDidNotStart(StranglerError):
    """A process exited, or did not answer its readiness URL in time; carries its log tail."""

    def __init__(self, url: str, log_tail: str) -> None:
        self.url = url
        self.log_tail = log_tail
        super().__init__(f"{url} did not become ready; last log lines:\n{log_tail}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, *, log_path: Path, timeout_s: float = 30.0
) -> None:
    """Poll ``url`` every 100 ms until it answers 2xx; raise ServiceDidNotStart otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url, timeout=0.5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ServiceDidNotStart(url, log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:])


def stop(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after ``grace_s`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process by unwinding, as Ctrl-C does (exit status 143).

    Python's default is to die at once, leaving every process a :func:`running` block
    started behind. Call it from the main thread of a program that starts processes
    (a benchmark's ``main``).
    """
    signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def running(
    command: Sequence[str],
    *,
    ready_url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 30.0,
    grace_s: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends, once ``ready_url`` answers 2xx.

    Output goes to ``log_path``. The process is stopped (SIGTERM, then SIGKILL after
    ``grace_s``) however the block ends, so no process is left behind (on SIGTERM too,
    once :func:`exit_on_sigterm` is in place).
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    try:
        wait_until_ready(process, ready_url, log_path=log_path, timeout_s=timeout_s)
        yield process
    finally:
        stop(process, grace_s)
