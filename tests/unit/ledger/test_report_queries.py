"""Report figures read by SQL from a ledger with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from strangler.ledger import schema
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.report_queries import RETENTION_KEY, load_report
from strangler.report.report import Report
from strangler.report.stats import two_proportion_difference, wilson_interval
from tests.helpers import fresh_pg_database
from tests.unit.report.known_ledger import T0, UNTIL, build_known_ledger


@contextmanager
def known_engine(database: str, folder: Path) -> Iterator[sa.Engine]:
    """An engine on a new ledger holding the known rows, on ``database``."""
    with ExitStack() as stack:
        if database == "sqlite":
            url = f"sqlite:///{folder / 'ledger.sqlite3'}"
        else:
            pg = stack.enter_context(fresh_pg_database("strangler_report"))
            url = pg.render_as_string(hide_password=False)
        found = create_ledger_engine(url)
        stack.callback(found.dispose)
        build_known_ledger(found)
        yield found


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.needs_postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """One known ledger per database for the tests that only read."""
    with known_engine(request.param, tmp_path_factory.mktemp("ledger")) as found:
        yield found


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A known ledger of its own, for a test that writes to it."""
    with known_engine(request.param, tmp_path) as found:
        yield found


@pytest.fixture
def report(shared: sa.Engine) -> Report:
    """The report over the known window."""
    return load_report(shared, since=T0, until=UNTIL, now=UNTIL)


def test_orders_per_group_and_outcome_mix(report: Report) -> None:
    """Each group counts its routed orders; reconciled orders are apart; older ones are out."""
    assert {p.group: (p.orders, p.terminal, p.in_flight) for p in report.paths} == {
        "legacy": (10, 10, 0),
        "instant": (21, 20, 1),
        "shadow": (12, 12, 0),
        "reconciled": (2, 2, 0),
    }
    assert report.path("legacy").outcomes == {
        "fulfilled": 8,
        "payment_declined": 1,
        "rejected_fraud": 1,
    }


def test_percentiles_are_nearest_rank_to_the_microsecond(report: Report) -> None:
    """p50, p90, p99 and max match the hand-computed ranks on both paths."""
    legacy, instant = report.path("legacy").times, report.path("instant").times
    assert (legacy.p50, legacy.p90, legacy.p99, legacy.max) == (50.0, 90.0, 100.0, 100.0)
    assert [round(v or 0, 6) for v in (instant.p50, instant.p90, instant.p99, instant.max)] == [
        0.010,
        0.018,
        0.020,
        0.020,
    ]


def test_histogram_counts_every_terminal_order(report: Report) -> None:
    """The time histogram's bins add up to the terminal orders, on their log-spaced edges."""
    instant = report.path("instant")
    assert sum(b.orders for b in instant.histogram) == instant.terminal
    assert [(b.low_s, b.orders) for b in report.path("legacy").histogram] == [
        (10.0, 1),
        (20.0, 3),
        (50.0, 5),
        (100.0, 1),
    ]


def test_handoffs_with_causes_and_errors(report: Report) -> None:
    """Fallbacks and claim-lost hand-offs carry their causes; step errors count per step."""
    instant = report.path("instant")
    assert (instant.fallbacks, instant.legacy_owned) == (1, 1)
    assert [(c.handoff, c.cause, c.orders) for c in instant.causes] == [
        ("fallback", "payment timeout", 1),
        ("legacy_owned", "claim answered 409", 1),
    ]
    assert (instant.errored_orders, dict(instant.step_errors)) == (1, {"authorize_payment": 1})


def test_shadow_counts_and_not_compared_reasons(report: Report) -> None:
    """Compared and not-compared shadow orders are counted, each not-compared with its reason."""
    shadow = report.shadow
    assert (shadow.orders, shadow.compared, shadow.not_compared) == (12, 10, 2)
    assert shadow.not_compared_reasons == {"dry_run_failed": 1, "legacy_not_terminal": 1}
    assert shadow.noise_compared == 4


def test_mismatch_per_step_with_wilson_beside_noise(report: Report) -> None:
    """Each step's mismatch rate carries its Wilson interval, next to the noise baseline's."""
    steps = {s.step: s for s in report.shadow.steps}
    assert list(steps) == ["fraud_scan", "authorize_payment", "fulfill", "outcome"]
    assert steps["fraud_scan"].shadow == wilson_interval(2, 10)
    assert steps["fraud_scan"].noise == wilson_interval(1, 4)
    assert steps["fulfill"].shadow == wilson_interval(0, 10)


def test_mismatch_series_adds_up(report: Report) -> None:
    """The mismatch series over time holds every compared step once."""
    fraud = [p for p in report.shadow.over_time if p.step == "fraud_scan"]
    assert (sum(p.rate.successes for p in fraud), sum(p.rate.total for p in fraud)) == (2, 10)
    assert all(T0 <= p.start < p.end <= UNTIL for p in fraud)
    assert len(fraud) > 1  # buckets span the comparisons, not the whole hour


def test_examples_show_both_sides_and_the_story(report: Report) -> None:
    """Examples are the latest mismatches, with both sides, what differs and the story link."""
    first = report.shadow.examples[0]
    assert [e.order_id for e in report.shadow.examples] == ["S7", "S3"]
    assert (first.candidate, first.baseline) == (
        {"fraud_scan": "rejected"},
        {"fraud_scan": "approved"},
    )
    assert first.steps == {"fraud_scan": "decision: 'rejected' != 'approved'"}
    assert first.story == "/_strangler/orders/S7"


def test_arms_differences_use_two_proportion_intervals(report: Report) -> None:
    """A/B rates: outcomes over terminal orders, fallbacks over routed orders, Newcombe CI."""
    failure = report.ab.differences["failure"]
    expected = two_proportion_difference(wilson_interval(1, 20), wilson_interval(0, 10))
    assert (failure.difference, failure.low, failure.high) == (
        expected.difference,
        expected.low,
        expected.high,
    )
    assert report.ab.differences["fallback"].instant == wilson_interval(1, 21)
    assert report.ab.differences["fraud_reject"].legacy == wilson_interval(1, 10)


def test_rollout_timeline_starts_with_the_level_in_force(report: Report) -> None:
    """The timeline holds the last change before the window, then the changes inside it."""
    assert [(e.from_rollout, e.to_rollout) for e in report.rollout] == [(0, 10), (10, 25)]


def test_retention_horizon_narrows_the_window(engine: sa.Engine) -> None:
    """Orders routed before kv['retention.horizon'] are out, and the window says so."""
    horizon = T0 + timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(
            schema.kv.insert().values(
                name=RETENTION_KEY, value=horizon.isoformat(), updated_at=horizon
            )
        )
    found = load_report(engine, since=T0, until=UNTIL)
    assert (found.window.retention_horizon, found.window.effective_since) == (horizon, horizon)
    assert found.path("legacy").orders == 0
    assert found.path("instant").orders == 11


def test_no_since_reads_everything_before_until(shared: sa.Engine) -> None:
    """Without --since the window is open at the start: the older order counts too."""
    found = load_report(shared, until=UNTIL)
    assert found.path("legacy").orders == 11


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (UNTIL, T0, "must be before"),
        (T0.replace(tzinfo=None), UNTIL, "no time zone"),
    ],
    ids=["reversed", "naive"],
)
def test_bad_window_is_a_value_error(
    shared: sa.Engine, since: datetime, until: datetime, message: str
) -> None:
    """A reversed or zone-less window is refused with a message saying how to fix it."""
    with pytest.raises(ValueError, match=message):
        load_report(shared, since=since, until=until)
