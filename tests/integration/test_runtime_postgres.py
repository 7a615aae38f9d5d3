"""A routing process on PostgreSQL: a notification is claimed on the listener's thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from strangler.ledger import ledger_from_url
from strangler.routing.runtime import Runtime
from strangler.settings import Settings
from tests.helpers import wait_until
from tests.unit.ledger.support import make_order
from tests.unit.routing.fakes import FakeFlags, FakeInstant, FakeLegacy

pytestmark = pytest.mark.needs_postgres


def test_an_order_taken_in_elsewhere_is_claimed_from_the_listener_thread(
    tmp_path: Path, pg_url: str
) -> None:
    """Another sidecar's intake notifies this routing process, whose listening thread asks
    the dispatcher to claim now (no hand-off to the feeder, whose poll is 30 s away); the
    order is routed and runs once. (Whether that claim or the feeder's runs is
    test_dispatcher's: claim_now leaves it to a claim already under way.)"""
    settings = Settings(data_dir=tmp_path, ledger_url=pg_url, poll_interval_ms=30_000)
    instant = FakeInstant()
    runtime = Runtime.from_settings(
        settings, flag_source=FakeFlags(), legacy=FakeLegacy(), instant=instant
    )
    callers: list[str] = []
    claim_now = runtime.dispatcher.claim_now

    def named() -> None:
        callers.append(threading.current_thread().name)
        claim_now()

    runtime.dispatcher.claim_now = named  # type: ignore[method-assign]
    other_sidecar = ledger_from_url(pg_url)
    try:
        with capture_logs() as logs:
            runtime.start()
            wait_until(
                lambda: any(e["event"] == "intake_listener_listening" for e in logs),
                10,
                "the listener to listen",
            )
        assert other_sidecar.record_received(make_order("o-1"), source="api")
        wait_until(lambda: runtime.ledger.backlog() == 0, 10, "the order to be terminal")
    finally:
        runtime.stop(5)
        other_sidecar.close()
    # The listener's look once connected (which finds nothing), then the notification.
    assert callers == ["strangler-listen", "strangler-listen"]
    assert instant.runs == {("o-1", False): 1}
