"""``strangler serve --front nginx`` as a real process, and its process tree from /proc."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import REPO_ROOT, free_port, require, running_process, strangler_cmd
from tests.integration.sidecar_support import ADMIN_TOKEN, Sidecar


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
    """``strangler serve <args>`` on a free port, with its own data dir and flag file."""
    require_nginx()
    port = free_port()
    data_dir = workdir / f"front-{port}"
    data_dir.mkdir()
    flags = data_dir / "flags.json"
    shutil.copy(REPO_ROOT / "flags" / "city_orders_instant_processing.json", flags)
    env = {
        "STRANGLER_DATA_DIR": str(data_dir),
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": upstream_url,
        "STRANGLER_LEGACY_URL": legacy_url,
        "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_LOG_FORMAT": "json",
        **{f"STRANGLER_{name.upper()}": value for name, value in settings.items()},
    }
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "sidecar.log"
    with running_process(
        [*strangler_cmd("serve"), *args],
        ready_url=f"{url}/_strangler/healthz",
        env=env,
        log_path=log,
        timeout=90.0,  # three processes start on a shared, busy machine
    ) as process:
        yield Sidecar(url=url, data_dir=data_dir, log=log, process=process)


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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def alive(pids: Sequence[int]) -> list[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"]
