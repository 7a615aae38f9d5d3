"""Run ``strangler legacy-sim`` as a real process for tests (see the fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from strangler.demo.processes import stop
from tests.helpers import free_port, running_process, strangler_cmd


@dataclass(frozen=True)
class SimOptions:
    """How to start the simulator.

    ``faults`` maps fault CLI options without dashes (``latency_ms``, ``jitter_ms``,
    ``error_rate``, ``outage``, ``outage_seconds``, ``slow_jobs_ms``) to values;
    ``scheduler`` False means jobs run only when a test asks; ``api_divergence`` is the
    ``--api-divergence`` spec (e.g. ``fraud_scan=0.05``).
    """

    job_interval: float = 300.0
    batch_size: int = 100
    seed: int = 7
    scheduler: bool = True
    token: str | None = None
    basic_auth: str | None = None
    max_attempts: int | None = None
    block_users: tuple[str, ...] = ()
    faults: Mapping[str, Any] = field(default_factory=dict)
    api_divergence: str | None = None

    def args(self, port: int, db: Path) -> list[str]:
        """The command line."""
        args = [
            "legacy-sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(db),
            "--job-interval",
            str(self.job_interval),
            "--batch-size",
            str(self.batch_size),
            "--seed",
            str(self.seed),
            "--log-format",
            "json",
        ]
        if not self.scheduler:
            args.append("--no-scheduler")
        if self.token:
            args += ["--token", self.token]
        if self.basic_auth:
            args += ["--basic-auth", self.basic_auth]
        if self.max_attempts is not None:
            args += ["--max-attempts", str(self.max_attempts)]
        for user in self.block_users:
            args += ["--block-user", user]
        if self.api_divergence:
            args += ["--api-divergence", self.api_divergence]
        for name, value in self.faults.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        return args


@dataclass
class RunningSim:
    """A simulator process: its URL, database file, and helpers to drive it in tests."""

    url: str
    db: Path
    options: SimOptions
    log: Path
    process: Any = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.options.token}"} if self.options.token else {}

    def set_faults(self, **config: Any) -> dict[str, Any]:
        """Replace the injected faults (``PUT /_sim/faults``); returns the new state."""
        response = requests.put(
            f"{self.url}/_sim/faults", json=config, headers=self._headers(), timeout=5
        )
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def faults(self) -> dict[str, Any]:
        """The fault state, with its counters."""
        response = requests.get(f"{self.url}/_sim/faults", headers=self._headers(), timeout=5)
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def run_job(self, name: str) -> dict[str, Any]:
        """Run one batch job now."""
        response = requests.post(f"{self.url}/jobs/{name}/run", headers=self._headers(), timeout=30)
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        return run

    def run_all_jobs(self) -> None:
        """One scheduler tick by hand: every job once, last stage first."""
        for name in ("fulfillment", "payment_authorization", "fraud_scan"):
            self.run_job(name)

    def stop(self) -> None:
        """Stop the process (SIGTERM)."""
        if self.process is not None:
            stop(self.process, grace_s=10.0)


def new_order(user_guid: str) -> dict[str, object]:
    """A body for the simulator's ``POST /orders`` (through a sidecar or not)."""
    return {
        "user_guid": user_guid,
        "unit_id": "unit-1",
        "city": "nyc",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token": "tok_visa_4242",
    }


@contextmanager
def start_legacy_sim(
    workdir: Path, options: SimOptions | None = None, *, db: Path | None = None
) -> Iterator[RunningSim]:
    """Start the simulator on an ephemeral loopback port; stop it when the block ends.

    Pass ``db`` to reuse a database file (a restart).
    """
    options = options or SimOptions()
    port = free_port()
    db = db or workdir / "legacy-sim.sqlite3"
    log = workdir / f"legacy-sim-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with running_process(
        strangler_cmd(*options.args(port, db)), ready_url=f"{url}/healthz", log_path=log
    ) as process:
        yield RunningSim(url=url, db=db, options=options, log=log, process=process)
