"""The verdict: one test per branch of each check, on reports built from hand-made aggregates."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strangler.report.report import (
    Aggregates,
    ArmDifference,
    GroupAggregates,
    Report,
    ShadowAggregates,
    StepMismatch,
    TimeStats,
    Window,
    build_report,
)
from strangler.report.stats import two_proportion_difference, wilson_interval
from strangler.report.verdict import Thresholds, judge

NOW = datetime(2030, 1, 1, tzinfo=UTC)
STEPS = ("fraud_scan", "authorize_payment", "fulfill", "outcome")


def _group(
    orders: int,
    *,
    failed: int = 0,
    fallbacks: int = 0,
    fell_back_then_failed: int = 0,
    p99: float = 0.01,
    rejected: int = 0,
) -> GroupAggregates:
    return GroupAggregates(
        orders=orders,
        terminal=orders,
        outcomes={
            "fulfilled": orders - failed - rejected,
            "failed": failed,
            "rejected_fraud": rejected,
        },
        times=TimeStats(count=orders, p50=p99 / 2, p90=p99, p99=p99, max=p99),
        histogram=(),
        handoffs={"fallback": fallbacks},
        causes=(),
        errored_orders=failed,
        step_errors={},
        failed_or_fell_back=failed + fallbacks - fell_back_then_failed,
    )


def _report(
    *,
    instant: int = 500,
    shadow: int = 1000,
    fraud_mismatches: int = 0,
    noise: tuple[int, int] = (0, 1000),
    failed: int = 0,
    fallbacks: int = 0,
    fell_back_then_failed: int = 0,
    p99: float = 0.01,
    rejected: tuple[int, int] = (0, 0),
    thresholds: Thresholds | None = None,
) -> Report:
    counts = dict.fromkeys(STEPS, (0, shadow)) | {"fraud_scan": (fraud_mismatches, shadow)}
    aggregates = Aggregates(
        generated_at=NOW,
        window=Window(since=None, until=NOW, retention_horizon=None, effective_since=None),
        groups={
            "instant": _group(
                instant,
                failed=failed,
                fallbacks=fallbacks,
                fell_back_then_failed=fell_back_then_failed,
                p99=p99,
                rejected=rejected[0],
            ),
            "shadow": _group(shadow),
            "legacy": _group(500, rejected=rejected[1]),
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


def test_interval_straddling_the_threshold_holds_saying_how_many_are_needed() -> None:
    """3/1000 mismatches: [0.10 %, 0.88 %] straddles 0.5 %, inconclusive, with a sample size."""
    report = _report(fraud_mismatches=3)
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("hold", "hold")
    assert "straddles 0.50 %" in reason
    found = next(c for c in report.verdict.checks if c.name == "mismatch:fraud_scan")
    assert (found.compared, found.needed) == (1000, 4778)


def test_excess_over_a_usable_noise_baseline_fails() -> None:
    """50/1000 mismatches over a quiet noise baseline (0/1000) fail on the Newcombe excess."""
    report = _report(fraud_mismatches=50)
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("fail", "fail")
    assert "less noise 0/1000 = 0.00 %" in reason
    assert "excess 5.00 % [" in reason


def test_noise_above_the_threshold_cannot_vouch() -> None:
    """A side that disagrees with itself beyond the threshold excuses nothing: fail."""
    report = _report(fraud_mismatches=50, noise=(50, 1000))
    status, reason = _check(report, "mismatch:fraud_scan")
    assert (report.verdict.status, status) == ("fail", "fail")
    assert reason.startswith(
        "the comparison cannot vouch: the per-order API disagrees with itself at 50/1000 = 5.00 %"
    )


def test_a_small_clean_noise_sample_excuses_nothing() -> None:
    """Noise 0/22 (upper bound 14.87 %) does not excuse fraud 4/90 = 4.44 %: fail."""
    report = _report(shadow=90, fraud_mismatches=4, noise=(0, 22))
    status, reason = _check(report, "mismatch:fraud_scan")
    assert status == "fail"
    assert "the noise sample 22 is below the minimum 200 and excuses nothing" in reason


def test_small_noise_excess_under_the_threshold_passes() -> None:
    """Shadow 8/1000 against noise 3/1000 leaves an excess under a 2 % threshold: pass."""
    thresholds = Thresholds(max_mismatch=0.02)
    report = _report(fraud_mismatches=8, noise=(3, 1000), thresholds=thresholds)
    assert _check(report, "mismatch:fraud_scan")[0] == "pass"


def test_error_rate_above_threshold_fails() -> None:
    """30 failed of 500 instant orders (6 %, lower bound 4.2 %) fail a 1 % error threshold."""
    report = _report(failed=30)
    assert _check(report, "error_rate")[0] == "fail"
    assert report.verdict.status == "fail"


def test_error_rate_counts_an_order_that_fell_back_and_failed_once() -> None:
    """4 instant orders that fell back and then failed are 4/4, not 8/4 (which would raise)."""
    report = _report(instant=4, failed=4, fallbacks=4, fell_back_then_failed=4)
    status, reason = _check(report, "error_rate")
    assert status == "fail"
    assert reason.startswith("4/4 = 100.00 %")


def test_error_rate_counts_one_such_order_in_ten_as_one() -> None:
    """1 fall-back-then-fail order among 10 reads 1/10."""
    report = _report(instant=10, failed=1, fallbacks=1, fell_back_then_failed=1)
    assert _check(report, "error_rate")[1].startswith("1/10 = 10.00 %")


@pytest.mark.parametrize(
    ("rejected", "status"),
    [((60, 25), "fail"), ((30, 25), "pass"), ((5, 40), "fail")],
    ids=["more-rejects", "within", "fewer-rejects"],
)
def test_ab_difference_beyond_the_tolerance_fails(rejected: tuple[int, int], status: str) -> None:
    """Fraud rejects instant vs legacy (500 orders each): beyond 1 point either way fails."""
    report = _report(rejected=rejected)
    assert _check(report, "ab:fraud_reject")[0] == status


def test_ab_with_an_empty_arm_is_not_applicable() -> None:
    """No instant orders: every A/B check passes as n/a, naming the empty arm."""
    report = _report(instant=0)
    assert _check(report, "ab:decline") == ("pass", "n/a (no instant orders)")


def test_p99_is_judged_only_when_asked() -> None:
    """Without max_p99_s there is no p99 check; with it, a slower p99 fails."""
    assert "p99" not in {c.name for c in _report(p99=2.0).verdict.checks}
    slow = _report(p99=2.0, thresholds=Thresholds(max_p99_s=1.0))
    assert _check(slow, "p99") == ("fail", "instant p99 2.000 s > 1 s")


def test_no_comparisons_holds_by_default() -> None:
    """With no shadow orders the mismatch check holds, saying how many comparisons it needs."""
    report = _report(instant=500, shadow=0)
    assert _check(report, "mismatch") == (
        "hold",
        "no comparisons yet: 0 of 765 compared orders needed per step",
    )


def test_no_comparisons_passes_only_when_opted_out() -> None:
    """require_shadow=False (--no-evidence) lets a window without comparisons pass."""
    report = _report(instant=500, shadow=0, thresholds=Thresholds(require_shadow=False))
    assert _check(report, "mismatch")[0] == "pass"


@pytest.mark.parametrize(
    "changes",
    [{"max_mismatch": 5.0}, {"max_error_rate": -0.1}, {"min_orders": -1}, {"max_p99_s": 0.0}],
    ids=["mismatch-percent", "negative-rate", "negative-orders", "zero-p99"],
)
def test_thresholds_refuse_nonsense(changes: dict[str, float]) -> None:
    """Thresholds outside their range are a ValueError naming the field."""
    with pytest.raises(ValueError, match=next(iter(changes))):
        Thresholds(**changes)  # type: ignore[arg-type]


def test_judge_reads_figures_without_a_report() -> None:
    """judge takes the figures it reads: plain counts, step mismatches and A/B differences."""
    fraud = StepMismatch(
        step="fraud_scan", shadow=wilson_interval(0, 1000), noise=wilson_interval(0, 1000)
    )
    found = two_proportion_difference(wilson_interval(60, 500), wilson_interval(25, 500))
    decline = ArmDifference(
        instant=found.first,
        legacy=found.second,
        difference=found.difference,
        low=found.low,
        high=found.high,
    )
    verdict = judge(
        Thresholds(max_p99_s=1.0),
        instant_orders=500,
        shadow_orders=1000,
        instant_failed_or_fell_back=0,
        instant_p99_s=0.5,
        steps=(fraud,),
        ab={"decline": decline},
    )
    assert [(c.name, c.status) for c in verdict.checks] == [
        ("orders", "pass"),
        ("mismatch:fraud_scan", "pass"),
        ("error_rate", "pass"),
        ("ab:decline", "fail"),
        ("p99", "pass"),
    ]
    assert verdict.status == "fail"


def test_the_verdict_module_does_not_import_the_report_module() -> None:
    """verdict.py imports no strangler.report.report, not even for type checking (no cycle)."""
    tree = ast.parse(Path(inspect.getfile(judge)).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "strangler.report.report" not in imported
    assert "strangler.report.stats" in imported
