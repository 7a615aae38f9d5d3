"""The runtime's real parts (flags, adapter, local pipeline, ledger) against the simulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from strangler.routing.runtime import Runtime
from strangler.settings import Settings
from tests.helpers import wait_until
from tests.integration.legacy_sim import SimOptions
from tests.integration.routing import (
    create_in_legacy,
    expected_outcome,
    ledger_rows,
    legacy_orders,
    mixed_orders,
    run_twice_problems,
    write_flags,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def legacy_sim_options() -> SimOptions:
    return SimOptions(job_interval=0.3)


def test_orders_on_every_path_are_processed_once_and_recorded(
    legacy_sim: str, tmp_path: Path
) -> None:
    """Legacy, instant and shadow orders all end with the right outcome, each run by one side."""
    settings = Settings(
        data_dir=tmp_path / "data",
        legacy_url=legacy_sim,
        flags_file=write_flags(tmp_path / "flags.json", rollout=70, instant=500, shadow=500),
        workers=4,
        poll_interval_ms=100,
    )
    orders = mixed_orders(42, "rt")
    create_in_legacy(legacy_sim, orders)
    runtime = Runtime.from_settings(settings)
    runtime.start()
    try:
        for order in orders:
            assert runtime.router.intake(order, source="api").new is True
        wait_until(lambda: runtime.ledger.backlog() == 0, 60, "every order to be terminal")
        stories = {order.order_id: runtime.ledger.story(order.order_id) for order in orders}
    finally:
        runtime.stop(10)
    paths = Counter(story["decision"]["path"] for story in stories.values() if story)
    assert set(paths) == {"legacy", "instant", "shadow"}
    wrong = {
        order.order_id: story["status"]
        for order in orders
        if (story := stories[order.order_id]) and story["status"] != expected_outcome(order)
    }
    assert wrong == {}
    ledger_url = settings.effective_ledger_url
    legacy = legacy_orders(legacy_sim, [order.order_id for order in orders])
    assert run_twice_problems(ledger_rows(ledger_url), legacy) == {}
    for order_id, story in stories.items():
        assert story is not None
        recorded = {(step["path"], step["dry_run"]) for step in story["steps"]}
        path = story["decision"]["path"]
        if path == "instant" and story["handoff"] is None:
            assert recorded == {("instant", False)}, order_id
            assert {r.actor for r in legacy[order_id].history} == {"api"}, order_id
        elif path == "shadow":
            assert recorded == {("instant", True), ("legacy", False)}, order_id
            assert story["dry_run_outcome"] == story["status"], order_id
        elif path == "legacy":
            assert recorded == {("legacy", False)}, order_id
