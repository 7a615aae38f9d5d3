"""``strangler serve`` with either front as a real process, and its process tree from /proc."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import require
from tests.integration.sidecar_support import Sidecar, running_sidecar

# How long serve's children may take to stop once told to: the routing process has 40 s
# and gunicorn's graceful timeout is 30 s (strangler.sidecar.supervisor and .server).
# They take about a second; a tighter bound would fail a stop that is only slow.
CHILDREN_STOP_S = 60.0
# What serves the public port: the proxy contract holds for each (test_proxy_contract.py).
FRONTS = ("python", "nginx")


def require_nginx() -> None:
    """Skip without nginx (fail under CI=true, where `make test` installs it)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    require(found is not None, "nginx is not installed (apt-get install -y nginx)")


@contextmanager
def running_front(
    workdir: Path,
    *,
    upstream_url: str,
    legacy_url: str,
    args: Sequence[str] = ("--front", "nginx"),
    **settings: str,
) -> Iterator[Sidecar]:
    """``strangler serve <args>`` (nginx in front) as :func:`running_sidecar` starts it."""
    require_nginx()
    with running_sidecar(
        workdir,
        upstream_url=upstream_url,
        legacy_url=legacy_url,
        args=args,
        ready_timeout_s=90.0,  # three processes start on a shared, busy machine
        **settings,
    ) as sidecar:
        yield sidecar


@contextmanager
def running_with_front(
    front: str,
    workdir: Path,
    *,
    upstream_url: str,
    legacy_url: str,
    args: Sequence[str] = (),
    **settings: str,
) -> Iterator[Sidecar]:
    """``strangler serve --front <front> <args>``: ``python`` (the proxy in the sidecar's
    HTTP workers) or ``nginx`` (nginx in front, skipped without nginx outside CI)."""
    start = running_front if front == "nginx" else running_sidecar
    with start(
        workdir,
        upstream_url=upstream_url,
        legacy_url=legacy_url,
        args=("--front", front, *args),
        **settings,
    ) as sidecar:
        yield sidecar


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] != "Z":
            parents[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = _cmdline(child)
                frontier.append(child)
    return found


def children(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    return [child for child in descendants(pid) if (_stat(child) or ("", 0))[1] == pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def nginx_workers(pid: int) -> list[int]:
    """The live nginx worker processes among the descendants of ``pid``."""
    return [child for child, cmd in descendants(pid).items() if "nginx: worker" in cmd]


def alive(pids: Sequence[int]) -> list[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"]
