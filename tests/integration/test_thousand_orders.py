"""Must-show of the routing facade: 1,000 orders through the sidecar at a 50% rollout.

Runs the demo machinery: the legacy simulator and the sidecar as real processes on
loopback, orders sent through the sidecar's proxy as the order service's clients would.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from strangler.demo.run import DemoOptions, DemoRun, run_demo
from strangler.settings import Settings
from tests.helpers import REPO_ROOT

ORDERS = 1_000
_BUSINESS_STEPS = {"fraud_scan", "authorize_payment", "fulfill"}


@pytest.fixture(scope="module")
def thousand_orders(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of 1,000 orders at 50% (80% of it instant, 20% shadow)."""
    workdir = tmp_path_factory.mktemp("thousand")
    settings = Settings.from_env(
        {}, flags_file=REPO_ROOT / "flags/city_orders_instant_processing.json"
    )
    options = DemoOptions(
        orders=ORDERS,
        rollout=50,
        variants={"instant": 80, "shadow": 20},
        job_interval_s=2.0,
        rate_per_s=150.0,
        timeout_s=240.0,
        workdir=Path(workdir),
    )
    return run_demo(options, settings, lambda _line: None, _no_progress_bar)


@pytest.mark.slow
def test_every_order_has_exactly_one_terminal_outcome(thousand_orders: DemoRun) -> None:
    """All 1,000 orders are in the ledger, each once, each terminal; none lost or doubled."""
    summary = thousand_orders.summary
    assert (summary.orders_in, summary.terminal) == (ORDERS, ORDERS)
    assert (summary.lost, summary.stuck, summary.processed_twice) == ((), (), ())
    assert len(thousand_orders.stories) == ORDERS


@pytest.mark.slow
def test_path_split_is_within_three_points_of_the_rollout(thousand_orders: DemoRun) -> None:
    """The share of orders the flag sent to the new side is 50% +- 3 points."""
    paths = [story["decision"]["path"] for story in thousand_orders.stories.values()]
    new_side = sum(1 for path in paths if path != "legacy") / len(paths)
    assert abs(new_side - 0.50) <= 0.03, f"new-side share {new_side:.3f}"


@pytest.mark.slow
def test_no_order_was_processed_by_both_paths(thousand_orders: DemoRun) -> None:
    """The simulator's own records: each order's steps were done by one path, except hand-offs.

    An order the instant path handed back (fallback, or the batch jobs had it first) may
    show instant steps then batch steps, but never the same step twice.
    """
    for order_id, story in thousand_orders.stories.items():
        history = thousand_orders.legacy_orders[order_id]["history"]
        done = [e for e in history if e["step"] in _BUSINESS_STEPS and not e.get("error")]
        steps = [entry["step"] for entry in done]
        assert len(steps) == len(set(steps)), f"{order_id} has a step twice: {history}"
        actors = {entry["actor"] for entry in done}
        expected = {"instant": {"api"}, "legacy": {"batch"}, "shadow": {"batch"}}
        path = story["decision"]["path"]
        if story["handoff"] is None and done:
            assert actors == expected[path], f"{order_id} ({path}) was processed by {actors}"


class _NoBar:
    def update(self, n_steps: int) -> None:
        """The test reads the run's result, not a bar."""


def _no_progress_bar(_length: int, _label: str) -> nullcontext[_NoBar]:
    return nullcontext(_NoBar())
