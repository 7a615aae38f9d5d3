"""``strangler serve`` supervising real children: nginx, the HTTP server and routing.

A child that dies takes the sidecar down with a non-zero exit; stopping ``serve`` stops
every child; a SIGKILLed ``serve`` still leaves no process behind.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port, wait_until
from tests.integration.front_support import (
    CHILDREN_STOP_S,
    alive,
    descendants,
    nginx_workers,
    running_front,
)
from tests.integration.sidecar_support import Sidecar

pytestmark = pytest.mark.slow

FRONT_AND_ROUTING = ("--front", "nginx", "--routing", "process")


@pytest.fixture
def sidecar(tmp_path: Path, upstream: str) -> Iterator[Sidecar]:
    """Front mode with routing in its own process, one per test."""
    legacy = f"http://127.0.0.1:{free_port()}"
    with running_front(
        tmp_path, upstream_url=upstream, legacy_url=legacy, args=FRONT_AND_ROUTING
    ) as running:
        yield running


def tree(sidecar: Sidecar) -> dict[int, str]:
    """The sidecar's descendants, once all five are up: routing, gunicorn's master and
    worker, nginx's master and its worker (named so once it has set its title)."""
    found: dict[int, str] = {}

    def complete() -> bool:
        found.clear()
        found.update(descendants(sidecar.process.pid))
        return len(found) == 5 and sum("nginx: worker" in cmd for cmd in found.values()) == 1

    wait_until(complete, 10, "serve's five processes", detail=lambda: found)
    return dict(found)


def pid_of(found: dict[int, str], marker: str) -> int:
    """The one pid whose command line contains ``marker``."""
    (pid,) = [pid for pid, cmd in found.items() if marker in cmd]
    return pid


def test_sigterm_stops_every_child_and_exits_zero(sidecar: Sidecar) -> None:
    """SIGTERM to serve: nginx, gunicorn and routing all stop, and serve exits 0."""
    children = tree(sidecar)
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(60) == 0
    assert alive(list(children)) == []


@pytest.mark.parametrize("child", ["nginx: master", "nginx: worker"])
def test_nginx_dying_takes_the_sidecar_down_non_zero(sidecar: Sidecar, child: str) -> None:
    """nginx's master SIGKILLed (or its only worker, which the master replaces): handled."""
    children = tree(sidecar)
    killed = pid_of(children, child)
    os.kill(killed, signal.SIGKILL)
    if child == "nginx: worker":
        # The killed worker counts until it is gone, so wait for the one replacing it.
        wait_until(
            lambda: (
                len(workers := nginx_workers(sidecar.process.pid)) == 1 and killed not in workers
            ),
            10,
            "a new nginx worker",
            detail=lambda: descendants(sidecar.process.pid),
        )
        assert requests.get(f"{sidecar.url}/_strangler/healthz", timeout=10).status_code == 200
        assert sidecar.process.poll() is None
        return
    assert sidecar.process.wait(60) == 1
    assert alive(list(children)) == []


def test_http_server_dying_takes_the_sidecar_down_non_zero(sidecar: Sidecar) -> None:
    """The Python HTTP server SIGKILLed: serve stops nginx and routing, exits 1."""
    children = tree(sidecar)
    (gunicorn_master,) = [
        pid for pid, cmd in children.items() if not cmd.startswith("nginx") and descendants(pid)
    ]
    os.kill(gunicorn_master, signal.SIGKILL)
    assert sidecar.process.wait(60) == 1
    # gunicorn's worker, orphaned, notices within a second and then stops gracefully.
    wait_until(
        lambda: alive(list(children)) == [],
        CHILDREN_STOP_S,
        "every child to be gone",
        detail=lambda: {pid: children[pid] for pid in alive(list(children))},
    )


def test_sigkilled_serve_leaves_no_process_behind(sidecar: Sidecar) -> None:
    """Even a SIGKILLed serve leaves nothing running: its children follow it."""
    children = tree(sidecar)
    sidecar.process.kill()
    sidecar.process.wait(10)
    wait_until(
        lambda: alive(list(children)) == [],
        CHILDREN_STOP_S,
        "every child to be gone",
        detail=lambda: {pid: children[pid] for pid in alive(list(children))},
    )
