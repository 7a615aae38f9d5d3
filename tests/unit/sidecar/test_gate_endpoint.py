"""/_strangler/gate: the gate's verdict for CD controllers, called as Flagger and Argo call it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderStatus, Route
from strangler.sidecar.exceptions import ReportUnavailable
from strangler.sidecar.report_cache import ReportCache
from strangler.sidecar.state import SidecarState, sidecar_state
from tests.unit.ledger.support import Clock, make_decision, make_order
from tests.unit.sidecar.fakes import FakeRollout, FakeRuntime

# Lenient enough that a few orders decide: no shadow evidence needed, 50 % errors allowed.
LENIENT = {"no_evidence": "true", "min_orders": "5", "max_error_rate": "50%"}
FLAGGER_BODY = {"name": "orders", "namespace": "shop", "phase": "Progressing"}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A SQLite ledger whose orders came a minute ago (the gate's window ends now)."""
    clock = Clock(datetime.now(UTC) - timedelta(minutes=1))
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock=clock)
    yield ledger
    ledger.close()


@pytest.fixture
def runtime(ledger: SqlLedger) -> FakeRuntime:
    """Fakes around the real ledger."""
    return FakeRuntime(ledger=ledger)  # type: ignore[arg-type]


def instant_orders(ledger: SqlLedger, n: int, status: OrderStatus) -> None:
    """``n`` instant-path orders that ended with ``status``."""
    for i in range(n):
        order_id = f"{status.value}-{i}"
        ledger.record_received(make_order(order_id), source="api")
        ledger.pin_decision(order_id, make_decision(Route.INSTANT), start_running=True)
        ended = datetime.now(UTC) - timedelta(seconds=30)
        ledger.finish(order_id, status, [], at=ended, release_owner="test")


def flagger(client: FlaskClient, **metadata: str) -> TestResponse:
    """POST as a Flagger webhook does: name, namespace, phase and string metadata."""
    return client.post("/_strangler/gate", json={**FLAGGER_BODY, "metadata": metadata})


def argo(client: FlaskClient, **query: str) -> TestResponse:
    """GET as Argo Rollouts' web provider does: a URL with a query and configured headers."""
    return client.get(
        "/_strangler/gate",
        query_string={"ok_when": "any", **query},
        headers={"Accept": "application/json", "X-Team": "orders"},
    )


def test_not_enough_orders_is_a_hold_answered_423(client: FlaskClient) -> None:
    """An empty window holds; Flagger gets a non-2xx and waits; the body says what is needed."""
    answer = flagger(client)
    body = answer.get_json()

    assert (answer.status_code, body["outcome"], body["decision"]["action"]) == (
        423,
        "hold",
        "hold",
    )
    assert body["orders"] == {"new_side": 0, "needed": 200}
    assert "not enough data" in body["decision"]["reason"]
    assert body["window"]["since"] is None
    assert body["checks"]


def test_a_passing_step_is_answered_200(client: FlaskClient, ledger: SqlLedger) -> None:
    """Enough fulfilled instant orders pass: 200, and the gate would advance 10% -> 25%."""
    instant_orders(ledger, 10, OrderStatus.FULFILLED)

    answer = flagger(client, **LENIENT)
    body = answer.get_json()

    assert (answer.status_code, body["outcome"]) == (200, "pass")
    assert (body["decision"]["from"], body["decision"]["to"]) == (10, 25)
    assert body["orders"] == {"new_side": 10, "needed": 5}


def test_a_failing_check_is_answered_412(client: FlaskClient, ledger: SqlLedger) -> None:
    """Every instant order failed: the error-rate check fails, 412, the reason names it."""
    instant_orders(ledger, 30, OrderStatus.FAILED)

    answer = flagger(client, min_orders="5")
    body = answer.get_json()
    failed = [check["name"] for check in body["checks"] if check["status"] == "fail"]

    assert (answer.status_code, body["outcome"]) == (412, "fail")
    assert "error_rate" in failed


def test_a_rollback_the_gate_would_make_is_a_failure(
    client: FlaskClient, ledger: SqlLedger, rollout: FakeRollout
) -> None:
    """With rollback_on_fail the gate would roll back: 412 too, and nothing is changed."""
    instant_orders(ledger, 30, OrderStatus.FAILED)

    answer = client.get("/_strangler/gate", query_string={"rollback_on_fail": "true"})

    assert (answer.status_code, answer.get_json()["decision"]["action"]) == (412, "roll_back")
    assert (rollout.calls, ledger.rollout_events()) == ([], [])


def test_the_plans_last_step_passes_when_the_verdict_does(
    client: FlaskClient, ledger: SqlLedger, rollout: FakeRollout
) -> None:
    """At 100 % the gate has nowhere to advance (it holds) but the step is good: pass."""
    rollout.state = dataclasses.replace(rollout.state, rollout=100)
    instant_orders(ledger, 10, OrderStatus.FULFILLED)

    answer = flagger(client, **LENIENT)
    body = answer.get_json()

    assert (answer.status_code, body["outcome"], body["decision"]["action"]) == (
        200,
        "pass",
        "hold",
    )


def test_a_killed_flag_holds(client: FlaskClient, ledger: SqlLedger, rollout: FakeRollout) -> None:
    """Nothing to promote while the flag is killed, even on good numbers."""
    rollout.state = dataclasses.replace(rollout.state, enabled=False)
    instant_orders(ledger, 10, OrderStatus.FULFILLED)

    assert flagger(client, **LENIENT).status_code == 423


@pytest.mark.parametrize(
    ("orders", "status", "outcome"),
    [
        (0, OrderStatus.FULFILLED, "hold"),
        (10, OrderStatus.FULFILLED, "pass"),
        (30, OrderStatus.FAILED, "fail"),
    ],
    ids=["hold", "pass", "fail"],
)
def test_argo_always_gets_200_and_reads_the_outcome(
    client: FlaskClient, ledger: SqlLedger, orders: int, status: OrderStatus, outcome: str
) -> None:
    """ok_when=any: every decision is a 200 (Argo counts non-2xx as errors), the JSON decides."""
    instant_orders(ledger, orders, status)

    answer = argo(client, **LENIENT) if outcome != "fail" else argo(client, min_orders="5")

    assert (answer.status_code, answer.get_json()["outcome"]) == (200, outcome)


@pytest.mark.parametrize(
    ("orders", "status", "expected"),
    [
        (10, OrderStatus.FULFILLED, 409),
        (0, OrderStatus.FULFILLED, 423),
        (30, OrderStatus.FAILED, 200),
    ],
    ids=["pass", "hold", "fail"],
)
def test_a_flagger_rollback_webhook_gets_200_only_on_failure(
    client: FlaskClient, ledger: SqlLedger, orders: int, status: OrderStatus, expected: int
) -> None:
    """ok_when=fail: Flagger's rollback hook rolls the canary back on a 2xx, so only a failure
    is one."""
    instant_orders(ledger, orders, status)
    metadata = {**LENIENT, "max_error_rate": "1%"} if status is OrderStatus.FAILED else LENIENT

    assert flagger(client, ok_when="fail", **metadata).status_code == expected


def test_metadata_wins_over_the_query(client: FlaskClient, ledger: SqlLedger) -> None:
    """A webhook URL may carry defaults; the POST's metadata overrides them."""
    instant_orders(ledger, 10, OrderStatus.FULFILLED)

    answer = client.post(
        "/_strangler/gate?min_orders=1000",
        json={**FLAGGER_BODY, "metadata": LENIENT},
    )

    assert answer.get_json()["orders"]["needed"] == 5


@pytest.mark.parametrize(
    ("call", "named"),
    [
        ({"query_string": {"plan": "5,1"}}, "plan"),
        ({"query_string": {"min_orders": "many"}}, "min_orders"),
        ({"query_string": {"max_mismatch": "lots"}}, "max_mismatch"),
        ({"query_string": {"ok_when": "maybe"}}, "ok_when"),
        ({"query_string": {"no_evidence": "perhaps"}}, "no_evidence"),
        ({"query_string": {"threshold": "1"}}, "threshold"),
        ({"json": {**FLAGGER_BODY, "metadata": {"min_orders": 5}}}, "metadata"),
        ({"data": "[1, 2]", "content_type": "application/json"}, "JSON object"),
    ],
    ids=["plan", "count", "rate", "ok-when", "flag", "unknown", "metadata-type", "body"],
)
def test_bad_parameters_are_400_naming_them(
    client: FlaskClient, call: dict[str, Any], named: str
) -> None:
    """A wrong option is refused with a message naming it, not judged with defaults."""
    method = client.post if "json" in call or "data" in call else client.get
    answer = method("/_strangler/gate", **call)

    assert (answer.status_code, answer.get_json()["error"]) == (400, "invalid_gate_parameter")
    assert named in answer.get_json()["message"]


def test_no_token_is_needed_and_nothing_is_written(
    client: FlaskClient, ledger: SqlLedger, rollout: FakeRollout
) -> None:
    """Read-only: no Authorization header, and neither the flag nor the ledger changes."""
    instant_orders(ledger, 10, OrderStatus.FULFILLED)
    before = ledger.counts()

    answers = [flagger(client, **LENIENT).status_code, argo(client).status_code]

    assert answers == [200, 200]
    assert (rollout.calls, ledger.rollout_events(), ledger.counts()) == ([], [], before)


def gate_answers(
    client: FlaskClient, runtime: FakeRuntime, tmp_path: Path
) -> Iterator[TestResponse]:
    """Each documented answer of GET and POST /_strangler/gate (for docs/sidecar-api.yaml)."""
    for call in (client.get, client.post):
        yield call("/_strangler/gate")  # 412: the fake ledger has no report, a failure
        yield call("/_strangler/gate", query_string={"plan": "none"})
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'gate.sqlite3'}")
    fake, runtime.ledger = runtime.ledger, ledger  # type: ignore[assignment]
    # Another ledger: the answers kept for the fake one's (REPORT_CACHE_S) no longer hold.
    sidecar_state(client.application).report_cache = ReportCache()
    try:
        yield argo(client, ok_when="pass")
        yield flagger(client)
        instant_orders(ledger, 10, OrderStatus.FULFILLED)
        for ok_when in ("pass", "fail"):
            yield argo(client, ok_when=ok_when, **LENIENT)
            yield flagger(client, ok_when=ok_when, **LENIENT)
        instant_orders(ledger, 30, OrderStatus.FAILED)
        yield argo(client, ok_when="pass", min_orders="5")
        yield flagger(client, min_orders="5")
    finally:
        runtime.ledger = fake
        ledger.close()


class _Counting:
    """A report runner that counts the gate verdicts it is asked for, then asks ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gates: list[dict[str, str]] = []

    def report(self, **query: Any) -> str:
        return str(self.inner.report(**query))

    def gate(self, params: dict[str, str], rollout: dict[str, Any], **when: Any) -> str:
        self.gates.append(params)
        return str(self.inner.gate(params, rollout, **when))

    def close(self) -> None:
        self.inner.close()


def test_the_verdict_is_computed_by_the_report_runner_once_for_the_same_question(
    client: FlaskClient, state: SidecarState, ledger: SqlLedger, rollout: FakeRollout
) -> None:
    """The endpoint hands the verdict to the sidecar's report runner (the child in `serve`)
    and keeps it REPORT_CACHE_S: the same question asked again is not computed again, a
    changed rollout or other options are."""
    instant_orders(ledger, 10, OrderStatus.FULFILLED)
    counting = _Counting(state.reports)
    state.reports = counting
    first, again = flagger(client, **LENIENT), flagger(client, **LENIENT)
    other = flagger(client, **{**LENIENT, "min_orders": "6"})
    rollout.state = dataclasses.replace(rollout.state, rollout=25, revision="rev-8")
    moved = flagger(client, **LENIENT)

    assert [a.status_code for a in (first, again, other, moved)] == [200, 200, 200, 200]
    assert again.get_data() == first.get_data()
    assert (moved.get_json()["decision"]["from"], moved.get_json()["decision"]["to"]) == (25, 50)
    assert len(counting.gates) == 3


def test_too_many_different_reports_waiting_is_a_503_with_retry_after(
    client: FlaskClient, state: SidecarState
) -> None:
    """The gate shares the report endpoint's bound on pending computations."""
    state.report_cache = ReportCache(max_pending=0)
    answer = client.get("/_strangler/gate")
    assert (answer.status_code, answer.get_json()["error"], answer.headers["Retry-After"]) == (
        503,
        "reports_busy",
        "5",
    )


def test_a_failed_report_process_is_a_503(client: FlaskClient, state: SidecarState) -> None:
    """A report process that died or overran is 503 report_unavailable, naming the cause."""

    class Failing:
        def report(self, **_query: object) -> str:
            raise ReportUnavailable("the report process failed: it exited")

        def gate(self, *_query: object, **_when: object) -> str:
            raise ReportUnavailable("the report process failed: no report within 300 s")

        def close(self) -> None:
            """Nothing to release."""

    state.reports = Failing()
    answer = flagger(client)
    assert (answer.status_code, answer.get_json()) == (
        503,
        {
            "error": "report_unavailable",
            "message": "the report process failed: no report within 300 s",
        },
    )
