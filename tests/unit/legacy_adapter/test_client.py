"""LegacyClient against a mocked legacy app: parsing, retries, errors, credentials."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import urllib3
from structlog.testing import capture_logs
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    DecodeError,
    HeaderParsingError,
    IncompleteRead,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from strangler.legacy_adapter import (
    ClaimConflict,
    LegacyClient,
    LegacyProtocolError,
    LegacyRejected,
    LegacyUnavailable,
    OrderNotFound,
    StepOutcome,
    WaitTimeout,
)
from strangler.orders import OrderNotification
from strangler.settings import Settings
from tests.helpers import free_port
from tests.legacy_http import LegacyHTTPMock
from tests.unit.legacy_adapter.conftest import FakeClock
from tests.unit.legacy_adapter.payloads import (
    BASE,
    claim_json,
    error_json,
    job_run_json,
    order_json,
    step_json,
)

ORDER_URL = f"{BASE}/orders/ord-1"
ANY_PATH = re.compile(re.escape(BASE) + r"/.*")


def test_create_order_sends_the_notification_with_a_stable_key(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """create_order posts the notification's fields with Idempotency-Key client:create:id."""
    mocked.post(f"{BASE}/orders", json=order_json(), status=201)
    note = OrderNotification.from_dict(
        {"order_id": "ord-1", "user_guid": "user-1", "unit_id": "unit-1", "payment_token": "tok"}
    )
    order = client.create_order(note)
    request = mocked.calls[0].request
    assert request.headers["Idempotency-Key"] == "strangler:create:ord-1"
    assert json.loads(request.body or b"") == {
        "order_id": "ord-1",
        "user_guid": "user-1",
        "unit_id": "unit-1",
        "payment_token": "tok",
    }
    assert (order.order_id, order.status, order.processing_mode) == ("ord-1", "pending", "batch")
    assert order.created_at == datetime(2025, 1, 31, 12, 0, 0, 1, tzinfo=UTC)


def test_create_without_order_id_retries_with_one_key(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """Without an order id, every retry of the create carries the same generated key."""
    mocked.post(f"{BASE}/orders", json=error_json("internal"), status=500)
    mocked.post(f"{BASE}/orders", json=order_json(), status=201)
    client.create_order({"user_guid": "u", "unit_id": "x"})
    keys = {call.request.headers["Idempotency-Key"] for call in mocked.calls}
    assert len(mocked.calls) == 2
    assert len(keys) == 1
    assert keys.pop().startswith("strangler:create:")


def test_get_order_parses_every_field(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """An Order object becomes a LegacyOrder with typed timestamps and history records."""
    at = "2025-01-31T12:00:01.000000Z"
    mocked.get(
        ORDER_URL,
        json=order_json(
            status="fulfilled",
            fraud_checked_at=at,
            authorized_at=at,
            fulfilled_at=at,
            terminal_at=at,
            attempts=0,
            vouchers=["GC-1", "GC-2"],
            history=[
                {
                    "step": "fraud_scan",
                    "actor": "batch",
                    "decision": "pass",
                    "reason": None,
                    "at": at,
                    "error": None,
                },
                {
                    "step": "authorize_payment",
                    "actor": "api",
                    "decision": None,
                    "reason": None,
                    "at": at,
                    "error": "gateway",
                },
            ],
        ),
    )
    order = client.get_order("ord-1")
    assert order.is_terminal
    assert order.vouchers == ("GC-1", "GC-2")
    assert order.fulfilled_at == datetime(2025, 1, 31, 12, 0, 1, tzinfo=UTC)
    assert [(h.step, h.actor, h.decision, h.error) for h in order.history] == [
        ("fraud_scan", "batch", "pass", None),
        ("authorize_payment", "api", None, "gateway"),
    ]
    assert order.decision_of("fraud_scan") == "pass"
    assert order.steps_by("api")[0].error == "gateway"
    assert (order.city, order.currency, order.amount_cents) == ("boston", "USD", 2500)


def test_unknown_order_raises_order_not_found(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A 404 becomes OrderNotFound carrying the order id, status and body; no retry."""
    mocked.get(ORDER_URL, json=error_json("not_found"), status=404)
    with pytest.raises(OrderNotFound) as caught:
        client.get_order("ord-1")
    assert (caught.value.order_id, caught.value.status, caught.value.code) == (
        "ord-1",
        404,
        "not_found",
    )
    assert len(mocked.calls) == 1


def test_order_ids_are_escaped_in_paths(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """An order id with a slash stays one path segment."""
    mocked.get(f"{BASE}/orders/a%2Fb", json=order_json(order_id="a/b"))
    assert client.get_order("a/b").order_id == "a/b"


def test_list_orders_sends_filters(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """Filters go out as query parameters; updated_since in UTC with a Z."""
    mocked.get(f"{BASE}/orders", json={"orders": [order_json()], "has_more": False})
    since = datetime(2025, 1, 31, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    orders = client.list_orders(
        status="pending", processing_mode="batch", updated_since=since, limit=10
    )
    assert [o.order_id for o in orders] == ["ord-1"]
    assert mocked.calls[0].request.params == {
        "status": "pending",
        "processing_mode": "batch",
        "updated_since": "2025-01-31T12:00:00.000000Z",
        "limit": "10",
    }


def test_orders_updated_since_none_asks_from_the_start(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """Following from nothing sends no updated_since."""
    mocked.get(f"{BASE}/orders", json={"orders": [], "has_more": False})
    assert client.orders_updated_since(None, limit=3) == []
    assert mocked.calls[0].request.params == {"limit": "3"}


def test_orders_listed_since_checks_the_rest_of_an_order_when_it_is_built(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """A listing entry's id and update time are read on arrival; the rest of the order is
    checked only by ``order()``, so a broken order fails only the reader that builds it."""
    broken = order_json(order_id="ord-2", status=7, updated_at="2025-01-31T12:00:02Z")
    mocked.get(f"{BASE}/orders", json={"orders": [order_json(), broken], "has_more": False})
    listed = client.orders_listed_since(None, limit=2)
    assert [(entry.order_id, entry.updated_at.second) for entry in listed] == [
        ("ord-1", 0),
        ("ord-2", 2),
    ]
    assert (listed[0].order().status, listed[0].order().created_at.microsecond) == ("pending", 1)
    with pytest.raises(LegacyProtocolError, match="'status'"):
        listed[1].order()


@pytest.mark.parametrize(
    "broken",
    [{"order_id": 7}, {"updated_at": "yesterday"}, {"updated_at": None}],
    ids=["order-id", "updated-at", "no-updated-at"],
)
def test_a_listing_entry_without_its_id_or_time_fails_the_page(
    client: LegacyClient, mocked: LegacyHTTPMock, broken: dict[str, object]
) -> None:
    """Without an order's id and update time a reader cannot skip it nor move its cursor."""
    mocked.get(f"{BASE}/orders", json={"orders": [order_json(**broken)], "has_more": False})
    with pytest.raises(LegacyProtocolError):
        client.orders_listed_since(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"updated_since": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
    ],
    ids=["naive-since", "limit-zero", "limit-big"],
)
def test_list_orders_refuses_bad_arguments(
    client: LegacyClient, mocked: LegacyHTTPMock, kwargs: dict, message: str
) -> None:
    """Caller mistakes are ValueErrors that say what to pass; nothing is sent."""
    with pytest.raises(ValueError, match=message):
        client.list_orders(**kwargs)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ConnectTimeoutError("slow"), "no connection within 1.0s"),
        (ReadTimeoutError(None, "/orders/ord-1", "slow"), "no answer within 5.0s"),
        (ProtocolError("Connection aborted.", ConnectionResetError("reset")), "connection failed"),
    ],
    ids=["connect-timeout", "read-timeout", "connection-error"],
)
def test_network_failures_are_retried_then_unavailable(
    client: LegacyClient,
    mocked: LegacyHTTPMock,
    clock: FakeClock,
    error: Exception,
    text: str,
) -> None:
    """A read is tried 1 + 3 times with growing backoff, then raises LegacyUnavailable."""
    mocked.get(ORDER_URL, body=error)
    with pytest.raises(LegacyUnavailable, match=text) as caught:
        client.get_order("ord-1")
    assert (len(mocked.calls), caught.value.attempts, caught.value.status) == (4, 4, None)
    assert len(clock.sleeps) == 3
    assert 0.025 <= clock.sleeps[0] <= 0.05
    assert 0.1 <= clock.sleeps[2] <= 0.2


def test_5xx_then_success_returns_the_answer(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """Two 5xx answers then a 200: the call succeeds on its third attempt."""
    mocked.get(ORDER_URL, json=error_json("injected_fault"), status=500)
    mocked.get(ORDER_URL, json=error_json("outage"), status=503)
    mocked.get(ORDER_URL, json=order_json())
    assert client.get_order("ord-1").order_id == "ord-1"
    assert len(mocked.calls) == 3
    assert client.breaker.consecutive_failures == 0


def test_5xx_every_time_is_unavailable_with_the_status(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """Persistent 503s raise LegacyUnavailable with the status and the error code."""
    mocked.get(ORDER_URL, json=error_json("outage"), status=503)
    with pytest.raises(LegacyUnavailable, match=r"HTTP 503 \(outage\)") as caught:
        client.get_order("ord-1")
    assert (caught.value.status, caught.value.attempts) == (503, 4)


def test_job_runs_are_never_retried(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A job run is not idempotent: a 500 fails at once, after one attempt."""
    mocked.post(f"{BASE}/jobs/fraud_scan/run", json=error_json("internal"), status=500)
    with pytest.raises(LegacyUnavailable) as caught:
        client.run_job("fraud_scan")
    assert (len(mocked.calls), caught.value.attempts) == (1, 1)


def test_run_job_parses_the_run(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A JobRun answer becomes a JobRun record."""
    mocked.post(f"{BASE}/jobs/fraud_scan/run", json=job_run_json())
    run = client.run_job("fraud_scan")
    assert (run.run_id, run.selected, run.errors, dict(run.outcomes)) == (
        7,
        3,
        1,
        {"pass": 1, "reject": 1},
    )


def test_unknown_job_is_a_caller_mistake(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """Asking for a job that does not exist raises ValueError listing the real ones."""
    with pytest.raises(ValueError, match="fraud_scan, payment_authorization, fulfillment"):
        client.run_job("cleanup")
    assert len(mocked.calls) == 0


def test_jobs_lists_schedules(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """GET /jobs becomes JobInfo records with their last run."""
    info = {
        "name": "fraud_scan",
        "step": "fraud_scan",
        "from_status": "pending",
        "interval_s": 2,
        "batch_size": 100,
        "scheduled": True,
        "next_run_at": "2025-01-31T12:00:02.000000Z",
        "running": False,
        "last_run": job_run_json(),
        "recent_runs": [job_run_json()],
    }
    mocked.get(f"{BASE}/jobs", json={"jobs": [info]})
    (job,) = client.jobs()
    assert (job.name, job.interval_s, job.scheduled) == ("fraud_scan", 2.0, True)
    assert job.last_run is not None
    assert job.last_run.run_id == 7
    assert len(job.recent_runs) == 1


def test_claim_success_conflict_and_replay(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """claim is True on 200 (first or replayed) and False on 409; the key is stable."""
    url = f"{ORDER_URL}/claim"
    mocked.post(url, json=claim_json())
    mocked.post(url, json=claim_json(replayed=True))
    mocked.post(url, json=error_json("batch_owned"), status=409)
    assert [client.claim("ord-1") for _ in range(3)] == [True, True, False]
    assert {c.request.headers["Idempotency-Key"] for c in mocked.calls} == {"strangler:claim:ord-1"}


def test_claim_retries_on_5xx_with_the_same_key(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """A claim lost to a 5xx is retried with the same key, so a replay answers True."""
    url = f"{ORDER_URL}/claim"
    mocked.post(url, body=ReadTimeoutError(None, url, "lost"))
    mocked.post(url, json=claim_json(replayed=True))
    assert client.claim("ord-1") is True
    assert len(mocked.calls) == 2


def test_claim_dry_run_sends_no_key(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A dry-run claim says whether a claim would succeed, without an idempotency key."""
    mocked.post(f"{ORDER_URL}/claim", json=claim_json("conflict", dry_run=True))
    assert client.claim("ord-1", dry_run=True) is False
    request = mocked.calls[0].request
    assert "Idempotency-Key" not in request.headers
    assert json.loads(request.body or b"") == {"dry_run": True}


def test_claim_of_an_unknown_order_raises(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """Claiming an unknown order is an error, not a False."""
    mocked.post(f"{ORDER_URL}/claim", json=error_json("not_found"), status=404)
    with pytest.raises(OrderNotFound):
        client.claim("ord-1")


@pytest.mark.parametrize(
    ("method", "step", "decision", "status"),
    [
        ("fraud_scan", "fraud_scan", "reject", "rejected_fraud"),
        ("authorize_payment", "authorize_payment", "authorized", "authorized"),
        ("fulfill", "fulfill", "fulfilled", "fulfilled"),
    ],
    ids=["fraud", "payment", "fulfil"],
)
def test_steps_return_outcomes(
    client: LegacyClient,
    mocked: LegacyHTTPMock,
    method: str,
    step: str,
    decision: str,
    status: str,
) -> None:
    """Each step posts to its endpoint with its own key and returns a StepOutcome."""
    details = {"vouchers": ["GC-1"]} if step == "fulfill" else {}
    mocked.post(f"{ORDER_URL}/{step}", json=step_json(step, decision, status, details=details))
    outcome = getattr(client, method)("ord-1")
    assert outcome == StepOutcome(
        step=step,
        decision=decision,
        order_status=status,
        dry_run=False,
        details=outcome.details,
        order_id="ord-1",
    )
    assert dict(outcome.details) == details
    assert mocked.calls[0].request.headers["Idempotency-Key"] == f"strangler:{step}:ord-1"


def test_step_dry_run(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A dry-run step sends dry_run true and no key; the outcome says it was a dry run."""
    mocked.post(
        f"{ORDER_URL}/fulfill",
        json=step_json(
            "fulfill", "fulfilled", "pending", dry_run=True, details={"vouchers": ["A"]}
        ),
    )
    outcome = client.fulfill("ord-1", dry_run=True)
    assert (outcome.dry_run, outcome.vouchers, outcome.reason) == (True, ("A",), None)
    assert "Idempotency-Key" not in mocked.calls[0].request.headers


def test_step_conflict_raises_claim_conflict(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A 409 on a step raises ClaimConflict with the contract's code."""
    mocked.post(f"{ORDER_URL}/fraud_scan", json=error_json("not_claimed"), status=409)
    with pytest.raises(ClaimConflict) as caught:
        client.fraud_scan("ord-1")
    assert (caught.value.code, caught.value.status, caught.value.order_id) == (
        "not_claimed",
        409,
        "ord-1",
    )
    assert isinstance(caught.value, LegacyRejected)


def test_an_answer_for_another_step_breaks_the_contract(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """A StepResult for another step than asked raises LegacyProtocolError."""
    mocked.post(f"{ORDER_URL}/fraud_scan", json=step_json("fulfill", "fulfilled", "fulfilled"))
    with pytest.raises(LegacyProtocolError, match="asked for fraud_scan"):
        client.fraud_scan("ord-1")


def test_release_sends_the_reason_cut_to_size(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """release posts its reason (cut to 500 characters) with a stable key."""
    mocked.post(f"{ORDER_URL}/release", json=order_json())
    assert client.release("ord-1", "x" * 600) is None
    request = mocked.calls[0].request
    reason = json.loads(request.body or b"")["reason"]
    assert (len(reason), reason[-1]) == (500, "\u2026")
    assert request.headers["Idempotency-Key"] == "strangler:release:ord-1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>oops</html>", "not JSON"),
        (json.dumps({"order_id": "ord-1"}), "lacks the field 'status'"),
        (json.dumps(order_json(amount_cents="12")), "'amount_cents' has the wrong type"),
        (json.dumps(order_json(created_at="2025-01-31T12:00:00")), "no UTC offset"),
        (json.dumps(order_json(updated_at="yesterday")), "not an ISO-8601"),
        (json.dumps(order_json(vouchers=[1])), "list of strings"),
        (json.dumps([1, 2]), "expected a JSON object"),
    ],
    ids=["html", "missing-field", "wrong-type", "naive-time", "bad-time", "bad-vouchers", "array"],
)
def test_answers_that_break_the_contract(
    client: LegacyClient, mocked: LegacyHTTPMock, body: str, message: str
) -> None:
    """A malformed 200 answer raises LegacyProtocolError saying what is wrong; no retry."""
    mocked.get(ORDER_URL, body=body, content_type="application/json")
    with pytest.raises(LegacyProtocolError, match=message):
        client.get_order("ord-1")
    assert len(mocked.calls) == 1


def test_a_4xx_that_is_not_json_is_still_a_rejection(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """A 403 HTML page from a proxy raises LegacyRejected with the text as body."""
    mocked.get(ORDER_URL, body="<h1>Forbidden</h1>", status=403)
    with pytest.raises(LegacyRejected) as caught:
        client.get_order("ord-1")
    assert (caught.value.status, caught.value.body, caught.value.code) == (
        403,
        "<h1>Forbidden</h1>",
        None,
    )


def test_a_redirect_breaks_the_contract(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """A redirect is not followed; it raises LegacyProtocolError pointing at the URL."""
    mocked.get(ORDER_URL, status=302, headers={"Location": "http://elsewhere/"})
    with pytest.raises(LegacyProtocolError, match="check the legacy URL"):
        client.get_order("ord-1")


def test_connection_refused_is_unavailable(clock: FakeClock) -> None:
    """Nothing listening on the port: LegacyUnavailable saying the connection was refused."""
    legacy = LegacyClient(f"http://127.0.0.1:{free_port()}", retries=1, sleep=clock.sleep)
    with legacy, pytest.raises(LegacyUnavailable, match="connection refused") as caught:
        legacy.get_order("ord-1")
    assert caught.value.attempts == 2


@pytest.mark.parametrize(
    "error",
    [
        ProtocolError("Connection aborted.", ConnectionResetError("x")),
        NewConnectionError(None, "x"),  # type: ignore[arg-type]
        NameResolutionError("legacy.test", None, OSError("x")),  # type: ignore[arg-type]
        ConnectTimeoutError("x"),
        ReadTimeoutError(None, "/", "x"),  # type: ignore[arg-type]
        IncompleteRead(10, 20),
        DecodeError("x"),
        SSLError("x"),
        ProxyError("x", OSError("x")),
        ClosedPoolError(None, "x"),  # type: ignore[arg-type]
        HeaderParsingError([], b"x"),
        urllib3.exceptions.HTTPError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_order("ord-1"),
        lambda c: c.list_orders(),
        lambda c: c.create_order({"order_id": "ord-1", "user_guid": "u", "unit_id": "x"}),
        lambda c: c.claim("ord-1"),
        lambda c: c.release("ord-1", "r"),
        lambda c: c.fraud_scan("ord-1"),
        lambda c: c.run_job("fulfillment"),
        lambda c: c.jobs(),
        lambda c: c.ping(),
    ],
    ids=["get", "list", "create", "claim", "release", "step", "run_job", "jobs", "ping"],
)
def test_no_urllib3_exception_leaks(
    clock: FakeClock, error: Exception, call: Callable[[LegacyClient], object]
) -> None:
    """Whatever urllib3 raises, every operation raises LegacyUnavailable instead."""
    legacy = LegacyClient(BASE, retries=1, sleep=clock.sleep)
    with LegacyHTTPMock() as mock, legacy:
        for method in (mock.GET, mock.POST):
            mock.add(method, ANY_PATH, body=error)
        with pytest.raises(LegacyUnavailable) as caught:
            call(legacy)
    assert not isinstance(caught.value, urllib3.exceptions.HTTPError)
    assert caught.value.__cause__ is error


def test_bearer_token_is_sent_but_never_shown(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """The token goes in the Authorization header, never in repr, logs or error messages."""
    mocked.get(ORDER_URL, json=error_json("outage"), status=503)
    with capture_logs() as logs, pytest.raises(LegacyUnavailable) as caught:
        client.get_order("ord-1")
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer s3cret-token"
    shown = " ".join([repr(client), str(caught.value), repr(logs)])
    assert "s3cret" not in shown
    assert repr(client) == "LegacyClient(base_url='http://legacy.test', auth='bearer')"
    assert [entry["event"] for entry in logs] == ["legacy_call_retry"] * 3 + ["legacy_call_failed"]
    assert logs[0]["order_id"] == "ord-1"


@pytest.mark.parametrize(
    ("url", "basic_auth"),
    [("http://legacy.test", ("ops", "pa:ss")), ("http://ops:pa:ss@legacy.test", None)],
    ids=["argument", "in-url"],
)
def test_basic_auth_from_argument_or_url(
    mocked: LegacyHTTPMock, url: str, basic_auth: tuple[str, str] | None
) -> None:
    """Basic credentials, given or taken from the URL, go in the header; the URL loses them."""
    mocked.get(ORDER_URL, json=order_json())
    with LegacyClient(url, basic_auth=basic_auth) as legacy:
        legacy.get_order("ord-1")
        assert legacy.base_url == BASE
        assert "pa:ss" not in repr(legacy)
    expected = "Basic " + base64.b64encode(b"ops:pa:ss").decode()
    assert mocked.calls[0].request.headers["Authorization"] == expected


def test_token_and_basic_auth_together_are_refused() -> None:
    """Two kinds of credentials at once is a caller mistake."""
    with pytest.raises(ValueError, match="not both"):
        LegacyClient(BASE, token="t", basic_auth=("u", "p"))


@pytest.mark.parametrize(
    ("url", "message"),
    [("legacy.test:8001", "http://host:port"), ("ftp://legacy.test", "http://host:port")],
    ids=["no-scheme", "ftp"],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    """A URL that is not http(s)://host is refused, showing the expected shape."""
    with pytest.raises(ValueError, match=message):
        LegacyClient(url)


@pytest.mark.parametrize(
    "kwargs",
    [{"connect_timeout": 0}, {"read_timeout": -1}, {"retries": -1}, {"backoff_s": -0.1}],
    ids=["connect", "read", "retries", "backoff"],
)
def test_bad_transport_settings_are_refused(kwargs: dict[str, float]) -> None:
    """Zero or negative timeouts, retries and backoff are refused."""
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        LegacyClient(BASE, **kwargs)  # type: ignore[arg-type]


def test_from_settings_uses_the_legacy_url_and_token(mocked: LegacyHTTPMock) -> None:
    """from_settings takes STRANGLER_LEGACY_URL and STRANGLER_LEGACY_TOKEN."""
    settings = Settings.from_env({}, legacy_url=BASE, legacy_token="tok-1")
    mocked.get(ORDER_URL, json=order_json())
    with LegacyClient.from_settings(settings, retries=0) as legacy:
        legacy.get_order("ord-1")
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer tok-1"


def test_cookies_the_app_sets_go_back_to_it(mocked: LegacyHTTPMock) -> None:
    """A cookie the app sets (a load balancer's affinity, say) is sent on later calls, as
    Session.request does."""
    mocked.get(ORDER_URL, json=order_json(), headers={"Set-Cookie": "lb=node-2; Path=/"})
    with LegacyClient(BASE) as legacy:
        legacy.get_order("ord-1")
        legacy.get_order("ord-1")
    assert "Cookie" not in mocked.calls[0].request.headers
    assert mocked.calls[1].request.headers["Cookie"] == "lb=node-2"


def test_wait_until_terminal_polls_until_done(
    client: LegacyClient, mocked: LegacyHTTPMock, clock: FakeClock
) -> None:
    """wait_until_terminal polls, rides out a short outage, and returns the terminal order."""
    mocked.get(ORDER_URL, json=order_json(status="fraud_checked"))
    for _ in range(4):
        mocked.get(ORDER_URL, json=error_json("outage"), status=503)
    mocked.get(ORDER_URL, json=order_json(status="payment_declined"))
    order = client.wait_until_terminal("ord-1", timeout_s=60, poll_interval_s=2)
    assert order.status == "payment_declined"
    assert clock.sleeps.count(2) == 2


def test_wait_until_terminal_times_out_with_the_last_status(
    client: LegacyClient, mocked: LegacyHTTPMock, clock: FakeClock
) -> None:
    """An order that stays pending raises WaitTimeout (also a TimeoutError) after the timeout."""
    mocked.get(ORDER_URL, json=order_json(status="pending"))
    start = clock.now
    with pytest.raises(WaitTimeout, match="last status: pending") as caught:
        client.wait_until_terminal("ord-1", timeout_s=3, poll_interval_s=1)
    assert isinstance(caught.value, TimeoutError)
    assert clock.now - start == pytest.approx(3)


def test_wait_until_terminal_stops_on_unknown_orders(
    client: LegacyClient, mocked: LegacyHTTPMock
) -> None:
    """Waiting for an order the app does not know fails at once."""
    mocked.get(ORDER_URL, json=error_json("not_found"), status=404)
    with pytest.raises(OrderNotFound):
        client.wait_until_terminal("ord-1", timeout_s=60)


def test_ping(client: LegacyClient, mocked: LegacyHTTPMock) -> None:
    """ping succeeds on a 2xx health answer and raises when the app is down."""
    mocked.get(f"{BASE}/healthz", json={"status": "ok"})
    client.ping()
    mocked.replace(mocked.GET, f"{BASE}/healthz", body=ProtocolError("down", OSError("down")))
    with pytest.raises(LegacyUnavailable):
        client.ping()
