"""What only the Python front has: the proxy in the sidecar's own HTTP worker processes.

The proxy contract both fronts keep is tests/integration/test_proxy_contract.py.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port
from tests.integration.sidecar_support import running_sidecar

pytestmark = pytest.mark.slow


def test_several_workers_share_metrics_and_stop_gracefully(tmp_path: Path, upstream: str) -> None:
    """With two worker processes, /metrics counts every worker; SIGTERM stops both cleanly."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_sidecar(
        tmp_path, upstream_url=upstream, legacy_url=dead, serve_workers="2"
    ) as sidecar:
        for _ in range(12):
            assert requests.get(f"{sidecar.url}/echo/m", timeout=10).status_code == 200
        metrics = requests.get(f"{sidecar.url}/metrics", timeout=10).text
        process = sidecar.process
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert "strangler_proxy_request_duration_seconds_count 12.0" in metrics
    stopped = sidecar.log.read_text().count('"event": "sidecar_workers_stopped"')
    assert (code, stopped) == (0, 2)
