"""Shadow and noise comparisons end to end, against the real simulator with a known divergence.

The simulator's per-order API diverges at fraud_scan for 5 % of orders (by order id), so
the orders that must mismatch are known in advance: exactly the diverging shadow orders,
on fraud_scan and the outcome, and none on any other step. The divergence repeats for its
orders, so the noise baseline (the same dry run judged twice) shows none of it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.ledger.schema import comparison_steps, comparisons
from strangler.routing.runtime import Runtime
from strangler.settings import Settings
from strangler.sim.divergence import diverges
from tests.helpers import wait_until
from tests.integration.legacy_sim import SimOptions
from tests.integration.routing import create_in_legacy, mixed_orders, write_flags

pytestmark = pytest.mark.slow

ORDERS = 240
SHARE = 0.05


@pytest.fixture
def legacy_sim_options() -> SimOptions:
    return SimOptions(job_interval=0.3, batch_size=500, api_divergence=f"fraud_scan={SHARE}")


def _stored(
    runtime: Runtime,
) -> tuple[dict[tuple[str, str], tuple[str, str | None, bool]], Counter[tuple[str, str, str]]]:
    with runtime.ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                comparisons.c.order_id,
                comparisons.c.kind,
                comparisons.c.status,
                comparisons.c.reason,
                comparisons.c.mismatch,
            )
        ).all()
        steps = conn.execute(
            sa.select(comparison_steps.c.kind, comparison_steps.c.step, comparison_steps.c.verdict)
        ).all()
    return (
        {(r.order_id, r.kind): (r.status, r.reason, bool(r.mismatch)) for r in rows},
        Counter((kind, step, verdict) for kind, step, verdict in steps),
    )


def _path(runtime: Runtime, order_id: str) -> str:
    story = runtime.ledger.story(order_id)
    assert story is not None
    return str(story["decision"]["path"])


def test_the_known_divergence_is_found_on_fraud_scan_only(legacy_sim: str, tmp_path: Path) -> None:
    """Shadow comparisons find exactly the diverging orders, on fraud_scan and the outcome;
    noise (the same side twice) finds none; none is left uncompared."""
    settings = Settings(
        data_dir=tmp_path / "data",
        legacy_url=legacy_sim,
        flags_file=write_flags(tmp_path / "flags.json", rollout=75, instant=0, shadow=1000),
        workers=4,
        poll_interval_ms=100,
        noise_sample=1.0,
        compare_sweep_interval_s=1,
    )
    orders = mixed_orders(ORDERS, "cmp")
    create_in_legacy(legacy_sim, orders)
    runtime = Runtime.from_settings(settings)
    runtime.start()
    try:
        for order in orders:
            runtime.router.intake(order, source="api")
        wait_until(lambda: len(_stored(runtime)[0]) == ORDERS, 120, "a comparison for every order")
        rows, steps = _stored(runtime)
        paths = {o.order_id: _path(runtime, o.order_id) for o in orders}
    finally:
        runtime.stop(10)
    kinds = Counter(kind for _, kind in rows)
    assert kinds["shadow"] == Counter(paths.values())["shadow"] > ORDERS // 2
    assert kinds["noise"] == Counter(paths.values())["legacy"] > 0
    assert {status for status, _, _ in rows.values()} == {"compared"}
    diverging = {o.order_id for o in orders if diverges(o.order_id, "fraud_scan", SHARE)}
    mismatched = {order_id for (order_id, _), (_, _, mismatch) in rows.items() if mismatch}
    assert mismatched == {o for o in diverging if paths[o] == "shadow"}
    assert 0 < len(diverging) < ORDERS // 5
    expected = sum(1 for o in diverging if paths[o] == "shadow")
    assert steps["shadow", "fraud_scan", "mismatch"] == expected
    assert steps["shadow", "outcome", "mismatch"] == expected
    assert any(paths[o] == "legacy" for o in diverging)
    for step in ("fraud_scan", "authorize_payment", "fulfill", "outcome"):
        assert steps["noise", step, "mismatch"] == 0
        assert steps["shadow", step, "match"] > 0
    assert steps["noise", "fraud_scan", "match"] == kinds["noise"]
