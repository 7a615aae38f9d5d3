"""The verdict: one test per branch of each check, on reports built from hand-made aggregates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strangler.compare.report import (
    Aggregates,
    GroupAggregates,
    Report,
    ShadowAggregates,
    TimeStats,
    Window,
    build_report,
)
from strangler.compare.verdict import Thresholds

NOW = datetime(2030, 1, 1, tzinfo=UTC)
STEPS = ("fraud_scan", "authorize_payment", "fulfill", "outcome")


def _group(
    orders: int, *, failed: int = 0, fallbacks: int = 0, p99: float = 0.01
) -> GroupAggregates:
    return GroupAggregates(
        orders=orders,
        terminal=orders,
        outcomes={"fulfilled": orders - failed, "failed": failed},
        times=TimeStats(count=orders, p50=p99 / 2, p90=p99, p99=p99, max=p99),
        histogram=(),
        handoffs={"fallback": fallbacks},
        causes=(),
        errored_orders=failed,
        step_errors={},
    )


def _report(
    *,
    instant: int = 500,
    shadow: int = 1000,
    fraud_mismatches: int = 0,
    noise: tuple[int, int] = (0, 200),
    failed: int = 0,
    p99: float = 0.01,
    thresholds: Thresholds | None = None,
) -> Report:
    counts = dict.fromkeys(STEPS, (0, shadow)) | {"fraud_scan": (fraud_mismatches, shadow)}
    aggregates = Aggregates(
        generated_at=NOW,
        window=Window(since=None, until=NOW, retention_horizon=None, effective_since=None),
        groups={
            "instant": _group(instant, failed=failed, p99=p99),
            "shadow": _group(shadow),
            "legacy": _group(200),
        },
        shadow=ShadowAggregates(
            compared=shadow,
            not_compared={},
            mismatched_orders=fraud_mismatches,
            step_counts=counts if shadow else {},
            noise_compared=noise[1],
            noise_counts={step: noise if step == "fraud_scan" else (0, noise[1]) for step in STEPS},
            over_time=(),
            examples=(),
        ),
        rollout=(),
    )
    return build_report(aggregates, thresholds)


def _check(report: Report, name: str) -> tuple[str, str]:
    found = next(c for c in report.verdict.checks if c.name == name)
    return found.status, found.reason


def test_everything_within_thresholds_passes() -> None:
    """0/1000 mismatches (upper bound 0.38 %) and 0/500 errors pass every check."""
    report = _report()
    assert report.verdict.status == "pass"
    assert report.verdict.reasons == ()


def test_too_few_orders_holds() -> None:
    """Fewer instant+shadow orders than min_orders hold, saying how many."""
    report = _report(instant=50, shadow=100)
    assert report.verdict.status == "hold"
    assert _check(report, "orders") == ("hold", "150 instant+shadow orders < min_orders 200")


def test_interval_straddling_the_threshold_holds() -> None:
    """3/1000 mismatches: [0.10 %, 0.88 %] straddles 0.5 %, inconclusive."""
    report = _report(fraud_mismatches=3)
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("hold", "hold")
    assert "straddles 0.50 %" in reason


def test_interval_above_threshold_and_noise_fails() -> None:
    """50/1000 mismatches against a quiet noise baseline (0/200) fail, quoting both."""
    report = _report(fraud_mismatches=50)
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("fail", "fail")
    assert "above the noise baseline 0/200" in reason


def test_interval_above_threshold_but_within_noise_holds() -> None:
    """50/1000 mismatches when legacy disagrees with itself as often (10/200) hold, not fail."""
    report = _report(fraud_mismatches=50, noise=(10, 200))
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("hold", "hold")
    assert "overlaps the noise baseline 10/200" in reason


def test_error_rate_above_threshold_fails() -> None:
    """30 failed of 500 instant orders (6 %, lower bound 4.2 %) fail a 1 % error threshold."""
    report = _report(failed=30)
    assert _check(report, "error_rate")[0] == "fail"
    assert report.verdict.status == "fail"


def test_p99_is_judged_only_when_asked() -> None:
    """Without max_p99_s there is no p99 check; with it, a slower p99 fails."""
    assert "p99" not in {c.name for c in _report(p99=2.0).verdict.checks}
    slow = _report(p99=2.0, thresholds=Thresholds(max_p99_s=1.0))
    assert _check(slow, "p99") == ("fail", "instant p99 2.000 s > 1 s")


@pytest.mark.parametrize(
    ("require", "status"), [(False, "pass"), (True, "hold")], ids=["optional", "required"]
)
def test_no_shadow_comparisons(require: bool, status: str) -> None:
    """With no shadow orders the mismatch check passes, or holds when shadow is required."""
    report = _report(instant=500, shadow=0, thresholds=Thresholds(require_shadow=require))
    assert _check(report, "mismatch")[0] == status


@pytest.mark.parametrize(
    "changes",
    [{"max_mismatch": 5.0}, {"max_error_rate": -0.1}, {"min_orders": -1}, {"max_p99_s": 0.0}],
    ids=["mismatch-percent", "negative-rate", "negative-orders", "zero-p99"],
)
def test_thresholds_refuse_nonsense(changes: dict[str, float]) -> None:
    """Thresholds outside their range are a ValueError naming the field."""
    with pytest.raises(ValueError, match=next(iter(changes))):
        Thresholds(**changes)  # type: ignore[arg-type]
