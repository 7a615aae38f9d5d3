"""What only front mode has: nginx sends the order route, and nothing else, to Python.

The proxy contract both fronts keep is tests/integration/test_proxy_contract.py; nginx's
supervision is test_front_supervision.py, ``--intake-only`` test_front_intake_only.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import free_port
from tests.integration.front_support import running_front
from tests.integration.sidecar_support import Sidecar

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[Sidecar]:
    """Front mode before the test upstream; its order route is ``POST /echo/orders``."""
    with running_front(
        tmp_path_factory.mktemp("front"),
        upstream_url=upstream,
        legacy_url=f"http://127.0.0.1:{free_port()}",
        order_route="POST /echo/orders",
    ) as running:
        yield running


def proxied_count(sidecar: Sidecar) -> float:
    """How many requests the Python proxy has forwarded (its latency histogram's count)."""
    text = requests.get(f"{sidecar.url}/metrics", timeout=5).text
    found = re.search(r"^strangler_proxy_request_duration_seconds_count\S* (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_only_the_order_route_reaches_python(front: Sidecar, session: requests.Session) -> None:
    """POST on the order route goes through the Python proxy; GET there and others do not."""
    before = proxied_count(front)
    session.get(f"{front.url}/echo/orders", timeout=10).raise_for_status()
    session.post(f"{front.url}/echo/other", data=b"{}", timeout=10).raise_for_status()
    assert proxied_count(front) == before
    answer = session.post(f"{front.url}/echo/orders/", data=b"{}", timeout=10)
    assert answer.json()["raw_uri"] == "/echo/orders/"
    assert proxied_count(front) == before + 1
