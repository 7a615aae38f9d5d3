"""Shared test helpers: service requirements, free ports, real processes on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from strangler.demo.processes import ServiceDidNotStart, free_port, running

__all__ = [
    "IN_CI",
    "PG_ADMIN_URL",
    "REPO_ROOT",
    "free_port",
    "fresh_pg_database",
    "http_ok",
    "require",
    "require_node",
    "running_process",
    "strangler_cmd",
    "wait_until",
]

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


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[sa.URL]:
    """A new, empty database on the local PostgreSQL server, dropped afterwards.

    Skips the test when the server is not reachable (fails under CI=true).
    """
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        require(False, f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    detail: Callable[[], object] | None = None,
) -> None:
    """Poll ``check`` every 50 ms until it is true; fail the test after ``timeout`` seconds.

    ``detail`` says what was seen instead (the state waited on, a log tail); it is shown
    with the failure, so that a timeout explains itself.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    seen = f"\n{detail()}" if detail is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}{seen}")


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
    try:
        with running(
            args,
            ready_url=ready_url,
            log_path=log_path,
            env=env,
            cwd=REPO_ROOT,
            timeout_s=timeout,
            grace_s=10.0,
        ) as proc:
            yield proc
    except ServiceDidNotStart as exc:
        pytest.fail(f"{args[0]}: {exc}")


def strangler_cmd(*args: str) -> list[str]:
    """The command line that runs the strangler CLI with this interpreter."""
    return [sys.executable, "-m", "strangler", *args]
