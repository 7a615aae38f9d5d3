"""Real processes for the sidecar's integration tests: a test upstream and ``strangler serve``."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO_ROOT, free_port, running_process, strangler_cmd
from tests.integration.legacy_sim import SimOptions, start_legacy_sim

ADMIN_TOKEN = "integration-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def running_upstream(workdir: Path, *, threads: int = 8) -> Iterator[str]:
    """tests/integration/upstream_app.py under gunicorn (gthread); yields its base URL."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "tests.integration.upstream_app:app",
    ]
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"upstream-{port}.log"
    with running_process(args, ready_url=f"{url}/echo/ready", log_path=log):
        yield url


@dataclass(frozen=True)
class Sidecar:
    """A running ``strangler serve``: its URL, data dir, log and process."""

    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 4000) -> str:
        """The end of its log (children included), to explain a failure."""
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def running_sidecar(
    workdir: Path,
    *,
    upstream_url: str,
    legacy_url: str,
    args: Sequence[str] = (),
    ready_timeout_s: float = 30.0,
    **settings: str,
) -> Iterator[Sidecar]:
    """``strangler serve <args>`` on a free port with its own data dir and a copy of the flag file.

    ``settings`` are extra STRANGLER_* variables by lower-case name (``sns_topic_arns``).
    """
    port = free_port()
    data_dir = workdir / f"sidecar-{port}"
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
        timeout=ready_timeout_s,
    ) as process:
        yield Sidecar(url=url, data_dir=data_dir, log=log, process=process)


@contextmanager
def running_rollout_sim(workdir: Path, *, api_divergence: str | None = None) -> Iterator[str]:
    """``strangler legacy-sim`` for a rollout walk: batch jobs every 0.5 s, 500 orders a run,
    ``--api-divergence`` if given; yields its URL."""
    options = SimOptions(job_interval=0.5, batch_size=500, api_divergence=api_divergence)
    with start_legacy_sim(workdir, options) as sim:
        yield sim.url


@contextmanager
def running_sidecar_on_sim(workdir: Path, sim_url: str) -> Iterator[Sidecar]:
    """``strangler serve`` with the simulator as order service and legacy app, following
    legacy orders every 200 ms."""
    with running_sidecar(
        workdir, upstream_url=sim_url, legacy_url=sim_url, poll_interval_ms="200"
    ) as sidecar:
        yield sidecar


def sha256(data: bytes) -> str:
    """Hex digest of ``data``, as the test upstream reports a body's."""
    return hashlib.sha256(data).hexdigest()
