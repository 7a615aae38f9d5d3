"""GET /_strangler/report: the report's JSON from the sidecar, on a real SQLite ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from strangler.ledger import ledger_from_url
from strangler.sidecar.exceptions import ReportUnavailable
from strangler.sidecar.report_cache import ReportCache
from strangler.sidecar.state import SidecarState
from tests.unit.report.known_ledger import T0, UNTIL, build_known_ledger
from tests.unit.sidecar.fakes import FakeRollout, FakeRuntime

WINDOW = {"since": T0.isoformat(), "until": UNTIL.isoformat()}


def report_from_real_ledger(
    client: FlaskClient, runtime: FakeRuntime, query: dict[str, str] | None = None
) -> TestResponse:
    """/_strangler/report (over WINDOW by default) on a real in-memory SQLite ledger."""
    ledger = ledger_from_url("sqlite://")
    build_known_ledger(ledger.engine)
    fake, runtime.ledger = runtime.ledger, ledger  # type: ignore[assignment]
    try:
        return client.get("/_strangler/report", query_string=query or WINDOW)
    finally:
        runtime.ledger = fake
        ledger.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[FakeRuntime]:
    """Fakes around a real SQLite ledger holding the known-answer rows."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    build_known_ledger(ledger.engine)
    yield FakeRuntime(ledger=ledger)  # type: ignore[arg-type]
    ledger.close()


def test_report_answers_the_window_without_a_token(client: FlaskClient) -> None:
    """The report needs no admin token and counts the orders routed in the window."""
    answer = client.get("/_strangler/report", query_string=WINDOW)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["schema_version"] == 1
    assert {p["group"]: p["orders"] for p in body["paths"]} == {
        "legacy": 10,
        "instant": 21,
        "shadow": 12,
        "reconciled": 2,
    }
    assert body["verdict"]["status"] == "fail"


def test_report_limits_examples(client: FlaskClient) -> None:
    """``examples`` caps the example mismatches."""
    answer = client.get("/_strangler/report", query_string={**WINDOW, "examples": "1"})
    assert [e["order_id"] for e in answer.get_json()["shadow"]["examples"]] == ["S7"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2030-13-01"}, "until"),
        ({"examples": "many"}, "examples"),
        ({"since": "stepp"}, "or step"),
        ({"since": "20300101"}, "since"),
        ({"since": UNTIL.isoformat(), "until": T0.isoformat()}, "before"),
    ],
    ids=["bad-since", "bad-until", "bad-examples", "not-step", "not-iso", "empty-window"],
)
def test_bad_query_is_a_400_naming_the_problem(
    client: FlaskClient, query: dict[str, str], names: str
) -> None:
    """A malformed parameter gets a 400 whose message names it."""
    answer = client.get("/_strangler/report", query_string=query)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_query"
    assert names in answer.get_json()["message"]


def test_a_ledger_that_cannot_be_read_is_a_503_naming_the_read(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """A database failure under the report answers 503 with the ledger's error, not a 500."""
    engine = runtime.ledger.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE comparison_steps")
    answer = client.get("/_strangler/report", query_string=WINDOW)
    body = answer.get_json()
    assert (answer.status_code, body["error"]) == (503, "ledger_unavailable")
    assert "could not read the report: OperationalError" in body["message"]


@pytest.mark.parametrize(
    ("revision", "since"),
    [
        ("r1", T0 + timedelta(minutes=30)),
        ("r0", T0 - timedelta(days=1)),
        ("rev-7", T0 + timedelta(minutes=30)),
    ],
    ids=["current-step", "first-step", "revision-not-on-the-timeline"],
)
def test_since_step_reports_the_step_the_gate_judges(
    client: FlaskClient, rollout: FakeRollout, revision: str, since: datetime
) -> None:
    """``since=step`` starts at the first event of the flag's revision (else the latest)."""
    rollout.state = dataclasses.replace(rollout.state, revision=revision)
    answer = client.get(
        "/_strangler/report", query_string={"since": "step", "until": WINDOW["until"]}
    )
    assert answer.status_code == 200
    assert datetime.fromisoformat(answer.get_json()["window"]["since"]) == since


def test_the_same_report_asked_again_is_not_computed_again(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """A dashboard polling every few seconds gets the kept report: no new read of the ledger."""
    reads: list[str] = []
    engine = runtime.ledger.engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "begin", lambda _conn: reads.append("begin"))
    query = {"since": "step", "until": WINDOW["until"]}
    first = client.get("/_strangler/report", query_string=query)
    after_first = len(reads)
    second = client.get("/_strangler/report", query_string=query)
    assert (first.status_code, second.status_code) == (200, 200)
    assert after_first > 0
    assert len(reads) == after_first
    assert second.get_json() == first.get_json()
    assert second.headers["Cache-Control"] == "max-age=5"


def test_a_report_that_cannot_be_computed_is_a_500_not_bad_input(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """A request with no query never gets a 400: a failure on the server's side is a 500."""
    ledger = ledger_from_url("sqlite://")
    build_known_ledger(ledger.engine)
    ledger.set_value("retention.horizon", "not a time")
    fake, runtime.ledger = runtime.ledger, ledger  # type: ignore[assignment]
    try:
        answer = client.get("/_strangler/report")
    finally:
        runtime.ledger = fake
        ledger.close()
    assert answer.status_code == 500
    assert answer.get_json()["error"] == "report_failed"


def test_too_many_different_reports_waiting_is_a_503_with_retry_after(
    client: FlaskClient, state: SidecarState
) -> None:
    """Past the cache's bound on pending queries a new one is refused, saying when to retry."""
    state.report_cache = ReportCache(max_pending=0)
    answer = client.get("/_strangler/report", query_string=WINDOW)
    assert (answer.status_code, answer.get_json()["error"], answer.headers["Retry-After"]) == (
        503,
        "reports_busy",
        "5",
    )


def test_a_failed_report_process_is_a_503(client: FlaskClient, state: SidecarState) -> None:
    """A report process that could not answer is 503 report_unavailable, naming the cause."""

    class Failing:
        def report(self, **_query: object) -> str:
            raise ReportUnavailable("the report process failed: it exited")

        def gate(self, *_query: object, **_when: object) -> str:
            raise ReportUnavailable("the report process failed: it exited")

        def close(self) -> None:
            """Nothing to release."""

    state.reports = Failing()
    answer = client.get("/_strangler/report", query_string=WINDOW)
    assert (answer.status_code, answer.get_json()) == (
        503,
        {"error": "report_unavailable", "message": "the report process failed: it exited"},
    )
