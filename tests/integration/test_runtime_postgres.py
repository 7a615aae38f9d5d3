"""A routing process on PostgreSQL: a notification is claimed on the listener's thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from strangler.ledger import LeasedOrder, ledger_from_url
from strangler.routing.runtime import Runtime
from strangler.settings import Settings
from tests.helpers import wait_until
from tests.unit.ledger.support import make_order
from tests.unit.routing.fakes import FakeFlags, FakeInstant, FakeLegacy

pytestmark = pytest.mark.needs_postgres


def test_an_order_taken_in_elsewhere_is_claimed_by_the_listener_thread(
    tmp_path: Path, pg_url: str
) -> None:
    """Another sidecar's intake notifies this routing process, whose listening thread claims
    the order itself (no hand-off to the feeder, whose poll is 30 s away); it runs once.

    The first order lets the start's claims settle (the feeder's, and the listener's
    look once connected, either of which may find it); the second meets an idle feeder."""
    settings = Settings(data_dir=tmp_path, ledger_url=pg_url, poll_interval_ms=30_000)
    instant = FakeInstant()
    runtime = Runtime.from_settings(
        settings, flag_source=FakeFlags(), legacy=FakeLegacy(), instant=instant
    )
    claims: list[tuple[str, list[str]]] = []
    real_claim = runtime.ledger.claim_due

    def named(owner: str, *, limit: int, lease_seconds: float, **options: Any) -> list[LeasedOrder]:
        claimed = real_claim(owner, limit=limit, lease_seconds=lease_seconds, **options)
        claims.append((threading.current_thread().name, [o.order_id for o in claimed]))
        return claimed

    runtime.ledger.claim_due = named  # type: ignore[method-assign]
    other_sidecar = ledger_from_url(pg_url)
    try:
        with capture_logs() as logs:
            runtime.start()
            wait_until(
                lambda: any(e["event"] == "intake_listener_listening" for e in logs),
                10,
                "the listener to listen",
            )
        for order_id in ("o-0", "o-1"):
            assert other_sidecar.record_received(make_order(order_id), source="api")
            wait_until(lambda: runtime.ledger.backlog() == 0, 10, "the order to be terminal")
    finally:
        runtime.stop(5)
        other_sidecar.close()
    assert [name for name, taken in claims if taken == ["o-1"]] == ["strangler-listen"]
    assert instant.runs == {("o-0", False): 1, ("o-1", False): 1}
