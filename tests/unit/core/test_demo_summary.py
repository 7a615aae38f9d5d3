"""The demo's accounting: every order counted once, doubles and losses named."""

from __future__ import annotations

from typing import Any

import pytest

from strangler.demo.summary import ShadowCounts, headline, nearest_rank, summarize


def _story(
    order_id: str, path: str, status: str, seconds: float, handoff: str | None = None
) -> Any:
    received = "2026-11-27T10:00:00+00:00"
    terminal = f"2026-11-27T10:00:{seconds:06.3f}+00:00"
    return {
        "order_id": order_id,
        "status": status,
        "handoff": handoff,
        "decision": {"path": path},
        "timestamps": {
            "received": received,
            "terminal": terminal if status != "routed" else None,
        },
    }


def _legacy(*steps: tuple[str, str]) -> dict[str, Any]:
    return {"history": [{"step": s, "actor": a, "decision": "ok"} for s, a in steps]}


def test_every_order_accounted_per_path() -> None:
    """Per-path counts, outcomes, fallbacks and times come from the stories."""
    stories = {
        "a": _story("a", "instant", "fulfilled", 0.2),
        "b": _story("b", "instant", "fulfilled", 7.0, handoff="fallback"),
        "d": _story("d", "instant", "fulfilled", 6.0, handoff="legacy_owned"),
        "c": _story("c", "legacy", "rejected_fraud", 5.0),
    }
    summary = summarize(["a", "b", "c", "d"], stories, {})
    legacy, instant = summary.paths
    assert (instant.path, instant.orders) == ("instant", 3)
    assert (instant.fell_back, instant.claim_lost) == (1, 1)
    assert dict(instant.outcomes) == {"fulfilled": 3}
    assert (instant.p50, instant.p99) == (pytest.approx(6.0), pytest.approx(7.0))
    assert legacy.outcomes == {"rejected_fraud": 1}
    assert summary.ok
    assert summary.lines()[-1] == (
        "accounting: 4 in, 4 terminal, 0 lost, 0 not terminal, 0 processed twice"
    )


def test_lost_and_stuck_orders_are_named() -> None:
    """An order missing from the ledger is lost; one not yet terminal is listed as such."""
    stories = {"a": _story("a", "legacy", "routed", 0)}
    summary = summarize(["a", "b"], stories, {})
    assert (summary.lost, summary.stuck, summary.terminal) == (("b",), ("a",), 0)
    assert not summary.ok


@pytest.mark.parametrize(
    ("steps", "twice"),
    [
        pytest.param(
            [("fraud_scan", "api"), ("authorize_payment", "batch"), ("fulfill", "batch")],
            False,
            id="fallback-handoff",
        ),
        pytest.param([("fraud_scan", "batch"), ("fraud_scan", "api")], True, id="both-paths"),
        pytest.param([("fulfill", "batch"), ("fulfill", "batch")], True, id="batch-twice"),
    ],
)
def test_processed_twice_means_a_step_done_twice(steps: list[tuple[str, str]], twice: bool) -> None:
    """A hand-off between paths is fine; any business step done twice is a double."""
    stories = {"a": _story("a", "instant", "fulfilled", 1)}
    summary = summarize(["a"], stories, {"a": _legacy(*steps)})
    assert bool(summary.processed_twice) is twice


def test_nearest_rank_percentiles() -> None:
    """p50 and p99 use the nearest-rank method; empty input has no percentile."""
    values = [float(v) for v in range(1, 101)]
    assert (nearest_rank(values, 50), nearest_rank(values, 99)) == (50.0, 99.0)
    assert nearest_rank([], 50) is None


def test_headline_tells_speed_accounting_and_shadow() -> None:
    """The headline quotes both p50s, their ratio, the accounting and per-step mismatches."""
    stories = {
        "a": _story("a", "instant", "fulfilled", 0.009),
        "b": _story("b", "legacy", "fulfilled", 4.8),
    }
    summary = summarize(["a", "b"], stories, {})
    shadow = ShadowCounts(
        compared=60,
        mismatched_orders=3,
        not_compared=2,
        steps={"fraud_scan": (3, 60), "authorize_payment": (0, 60), "fulfill": (0, 57)},
    )
    assert headline(summary, shadow) == (
        "instant p50 9 ms vs batch p50 4.8 s: 533x faster; 2/2 accounted for, 0 lost, "
        "0 processed twice; shadow: 60 compared, 3 mismatches "
        "(fraud 3/60, payment 0/60, fulfil 0/57), 2 not compared"
    )


def test_headline_without_both_paths_says_so() -> None:
    """Without terminal orders on both paths the headline says there is nothing to compare."""
    summary = summarize(["a"], {"a": _story("a", "legacy", "fulfilled", 4.8)}, {})
    assert headline(summary, None).startswith(
        "instant vs batch: not both paths had terminal orders; 1/1 accounted for"
    )
