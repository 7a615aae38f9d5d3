"""``strangler worker`` processes for reliability tests, and reading their JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strangler.demo.processes import stop
from tests.helpers import REPO_ROOT, strangler_cmd


@dataclass
class Worker:
    """A running worker process and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called ``name``, in order."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                found.append(event)
        return found

    def kill(self) -> None:
        """SIGKILL: no clean-up, leases left behind, as in a crash."""
        self.process.kill()
        self.process.wait(10)


def worker_env(
    *, ledger_url: str, legacy_url: str, flags_file: Path, data_dir: Path
) -> dict[str, str]:
    """The environment of a worker: fast polling and short leases, JSON logs."""
    return {
        "STRANGLER_LEDGER_URL": ledger_url,
        "STRANGLER_LEGACY_URL": legacy_url,
        "STRANGLER_FLAGS_FILE": str(flags_file),
        "STRANGLER_DATA_DIR": str(data_dir),
        "STRANGLER_WORKERS": "2",
        "STRANGLER_LEASE_SECONDS": "2",
        "STRANGLER_POLL_INTERVAL_MS": "100",
        "STRANGLER_LOG_FORMAT": "json",
    }


@contextmanager
def running_workers(
    env: dict[str, str], *logs: Path, timeout: float = 30.0
) -> Iterator[list[Worker]]:
    """Start one ``strangler worker`` per log file, together; wait until each has started.

    Each gets SIGTERM at the end (SIGKILL after 10 s).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_")}
    workers = []
    for log in logs:
        with log.open("ab") as out:
            process = subprocess.Popen(
                strangler_cmd("worker"),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**clean, **env},
                cwd=REPO_ROOT,
            )
        workers.append(Worker(process, log))
    try:
        deadline = time.monotonic() + timeout
        for worker in workers:
            while not worker.events("runtime_started"):
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"a worker did not start:\n{worker.log.read_text()[-4000:]}")
                time.sleep(0.05)
        yield workers
    finally:
        for worker in workers:
            stop(worker.process, grace_s=10.0)


def runs_per_order(*workers: Worker) -> Counter[str]:
    """How many times the instant pipeline was started for real, per order, in all logs:
    ``instant_run_started``, or ``order_routed`` with ``run_started`` for a run that
    started right after its decision was pinned (one line for both)."""
    return Counter(
        event["order_id"]
        for worker in workers
        for event in (*worker.events("instant_run_started"), *worker.events("order_routed"))
        if (event["event"] == "instant_run_started" or event.get("run_started"))
        and not event.get("dry_run")
    )
