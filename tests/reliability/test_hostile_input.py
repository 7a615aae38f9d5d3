"""Scenario 5, hostile input: nothing a client sends gets a 5xx, a crash or an outbound call.

One real ``strangler serve --intake-only`` process on real PostgreSQL, in front of a real
upstream, with HTTP(S)_PROXY pointing at a recording listener: any request the sidecar
made to a host outside loopback (an SNS certificate or SubscribeURL) would be seen
there, and the tests assert none is. Its stdout and stderr are captured to a file, in
which no payment token, traceback or RecursionError may appear. In-process parts
(the parser, signed SNS messages) are fuzzed with hypothesis; the API document is
fuzzed with schemathesis against the process. Each part is bounded in examples.
"""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from strangler.exceptions import InvalidNotification
from strangler.orders import OrderNotification
from strangler.settings import Settings
from strangler.sidecar.app import create_app
from strangler.sidecar.exceptions import UntrustedSnsUrl
from strangler.sidecar.sns import check_signing_cert_url
from tests.helpers import REPO_ROOT, free_port, fresh_pg_database, running_process, strangler_cmd
from tests.integration.sidecar_support import ADMIN_TOKEN, AUTH, running_upstream
from tests.unit.sidecar.fakes import FakePool, FakeRollout, FakeRuntime
from tests.unit.sidecar.sns_signing import CERT_URL, TOPIC_ARN, SnsSigner

pytestmark = [pytest.mark.needs_postgres, pytest.mark.slow]

TOKEN = "tok_hostile_4242424242424242"  # must never reach a log line
ORDER = {"order_id": "h-1", "user_guid": "u-1", "unit_id": "n-1", "payment_token": TOKEN}
DOC = REPO_ROOT / "docs" / "sidecar-api.yaml"
TIMEOUT = 10.0
UNTRUSTED_CERT_URLS = [
    "https://evil.example/cert.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
    "https://evil.example@sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    "http://sns.us-east-1.amazonaws.com/cert.pem",
    "https://127.0.0.1/cert.pem",
    "https://[::1]/cert.pem",
    "https://sns.us-east-1.amazonaws.com/cert.txt",
    "file:///etc/passwd",
    "//evil.example/cert.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.example/cert.pem",
]


class _Recorder(socketserver.ThreadingTCPServer):
    """A listener standing in for every outbound proxy: records each request's first line."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordFirstLine)
        self.lines: list[str] = []


class _RecordFirstLine(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        assert isinstance(self.server, _Recorder)
        self.server.lines.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@dataclass
class HostileSidecar:
    """The running sidecar, its captured output and the outbound requests it made."""

    url: str
    log: Path
    outbound: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No outbound request, and no token, traceback or RecursionError in the output."""
        text = self.log.read_text(errors="replace")
        assert self.outbound == []
        assert TOKEN not in text
        assert "Traceback" not in text
        assert "RecursionError" not in text


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSidecar]:
    """``strangler serve --intake-only`` on PostgreSQL, outbound traffic to the recorder."""
    workdir = tmp_path_factory.mktemp("hostile")
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    port = free_port()
    flags = workdir / "flags.json"
    flags.write_text((REPO_ROOT / "flags" / "city_orders_instant_processing.json").read_text())
    with fresh_pg_database("strangler_hostile") as db, running_upstream(workdir) as upstream:
        env = {
            "STRANGLER_DATA_DIR": str(workdir),
            "STRANGLER_FLAGS_FILE": str(flags),
            "STRANGLER_LEDGER_URL": db.render_as_string(hide_password=False),
            "STRANGLER_UPSTREAM_URL": upstream,
            "STRANGLER_LEGACY_URL": f"http://127.0.0.1:{free_port()}",
            "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
            "STRANGLER_SERVE_PORT": str(port),
            "STRANGLER_SNS_TOPIC_ARNS": TOPIC_ARN,
            "STRANGLER_LOG_FORMAT": "json",
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        log = workdir / "sidecar.log"
        url = f"http://127.0.0.1:{port}"
        with running_process(
            [*strangler_cmd("serve"), "--intake-only"],
            ready_url=f"{url}/_strangler/healthz",
            env=env,
            log_path=log,
        ):
            yield HostileSidecar(url=url, log=log, outbound=recorder.lines)
    recorder.shutdown()
    recorder.server_close()


# -- the notification parser, in process ----------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_fields = st.sampled_from([*ORDER, "city", "amount_cents", "currency", "quantity", "created_at"])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=256),
        st.text(max_size=256).map(str.encode),
        st.dictionaries(_fields | st.text(max_size=8), _json_values, max_size=8).map(
            lambda d: json.dumps({**ORDER, **d}).encode()
        ),
    )
)
def test_the_parser_answers_a_notification_or_says_what_is_wrong(raw: bytes) -> None:
    """Any body parses to an order the ledger can store as JSON, or InvalidNotification."""
    errors: dict[str, str] = {}
    try:
        order = OrderNotification.from_json(raw)
    except InvalidNotification as exc:
        errors = exc.errors
    if errors:
        assert TOKEN not in json.dumps(errors)
        return
    stored = json.dumps(order.to_dict(), allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert "/" not in order.order_id
    assert stored


# -- hostile bodies and requests, against the process -----------------------------------

_NOTIFY = "/_strangler/notifications"
_JSON = {"Content-Type": "application/json"}


def _order(**changes: Any) -> bytes:
    return json.dumps({**ORDER, **changes}).encode()


HOSTILE = [
    ("oversized", _NOTIFY, "POST", b'{"pad": "' + b"x" * (70 * 1024) + b'"}', _JSON, 413),
    ("wrong-content-type", _NOTIFY, "POST", b"order_id=1&payment_token=" + TOKEN.encode(),
     {"Content-Type": "application/x-www-form-urlencoded"}, 400),
    ("deep-nesting", _NOTIFY, "POST", b"[" * 20_000, _JSON, 400),
    ("deep-in-a-field", _NOTIFY, "POST", _order(x=json.loads("[" * 900 + "]" * 900)), _JSON, 400),
    ("invalid-utf8", _NOTIFY, "POST", b'{"order_id": "\xff\xfe", "payment_token": "'
     + TOKEN.encode() + b'"}', _JSON, 400),
    ("surrogate-id", _NOTIFY, "POST", _order(order_id="a\ud800b"), _JSON, 400),
    ("surrogate-token", _NOTIFY, "POST", _order(payment_token=TOKEN + "\udfff"), _JSON, 400),
    ("surrogate-key", _NOTIFY, "POST", _order(**{"k\ud800": 1}), _JSON, 400),
    ("nan", _NOTIFY, "POST", _order(score=float("nan")), _JSON, 400),
    ("slash-id", _NOTIFY, "POST", _order(order_id="a/b"), _JSON, 400),
    ("nul-id", _NOTIFY, "POST", _order(order_id="a\x00b"), _JSON, 400),
    ("sns-deep", "/_strangler/sns", "POST", b"[" * 20_000, _JSON, 400),
    ("sns-invalid-utf8", "/_strangler/sns", "POST", b'{"Type": "\xff"}', _JSON, 400),
    ("sns-oversized", "/_strangler/sns", "POST", b"x" * (400 * 1024), _JSON, 413),
    ("rollout-deep", "/_strangler/rollout", "PUT", b"[" * 15_000, _JSON, 400),
    ("rollout-surrogate", "/_strangler/rollout", "PUT",
     json.dumps({"percentage": 5, "reason": "a\ud800"}).encode(), _JSON, 400),
    ("rollout-actor-object", "/_strangler/rollout", "PUT",
     json.dumps({"enabled": False, "reason": "x", "actor": {}}).encode(), _JSON, 400),
    ("decide-empty-id", "/_strangler/decide?order_id=&user_guid=u&unit_id=n", "GET", b"", {}, 400),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "method", "body", "headers", "status"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_bodies_get_a_json_4xx(
    sidecar: HostileSidecar,
    path: str,
    method: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    """Oversized, mistyped, deep, non-UTF-8, surrogate, NaN and '/' input: a JSON 4xx."""
    response = requests.request(
        method, sidecar.url + path, data=body, headers={**AUTH, **headers}, timeout=TIMEOUT
    )
    assert (response.status_code, response.headers["Content-Type"]) == (status, "application/json")
    assert response.json()["message"]
    sidecar.assert_clean()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 200 + b"\r\n", 431),
        (b"POST /_strangler/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /_strangler/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400),
        (b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
    ids=[
        "request-line-too-long",
        "too-many-headers",
        "negative-length",
        "bad-length",
        "bad-method",
    ],
)
def test_requests_the_http_server_refuses_get_a_json_4xx(
    sidecar: HostileSidecar, request_bytes: bytes, status: int
) -> None:
    """What gunicorn refuses before the app runs is answered in JSON too, never HTML."""
    host, port = sidecar.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
        conn.sendall(request_bytes)
        answer = _read_all(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode()
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]
    sidecar.assert_clean()


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- SNS: fuzzed envelopes over HTTP, forged and tampered signatures in process -------

_envelope = st.fixed_dictionaries(
    {
        "Type": st.sampled_from(
            ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
        )
        | st.text(max_size=10),
        "MessageId": st.text(max_size=20),
        "TopicArn": st.sampled_from([TOPIC_ARN, "arn:aws:sns:us-east-1:1:other"]),
        "Message": st.just(json.dumps(ORDER)) | st.text(max_size=40),
        "Timestamp": st.text(max_size=30),
        "SignatureVersion": st.sampled_from(["1", "2", "3", ""]),
        "Signature": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
        | st.text(max_size=20),
        "SigningCertURL": st.sampled_from(UNTRUSTED_CERT_URLS) | st.text(max_size=40),
        "SubscribeURL": st.sampled_from(UNTRUSTED_CERT_URLS),
    },
    optional={"MessageAttributes": _json_values, "Subject": _json_values, "Token": st.text()},
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(envelope=_envelope)
def test_fuzzed_sns_envelopes_never_get_a_5xx_or_reach_out(
    sidecar: HostileSidecar, envelope: dict[str, Any]
) -> None:
    """Random SNS envelopes with untrusted certificate URLs: a 4xx, and no outbound request."""
    response = requests.post(
        f"{sidecar.url}/_strangler/sns", data=json.dumps(envelope), headers=_JSON, timeout=TIMEOUT
    )
    assert 400 <= response.status_code < 500, response.text
    assert sidecar.outbound == []


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    """One SNS signing identity (RSA keys are slow to make)."""
    return SnsSigner()


@dataclass
class SnsApp:
    """The sidecar app in process on fakes, with the real SNS verifier."""

    app: Flask
    fetched: list[str]


@pytest.fixture(scope="module")
def sns_app(signer: SnsSigner) -> SnsApp:
    """The app, its certificate fetcher recording URLs and serving the signer's certificate."""
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return signer.pem

    app = create_app(
        Settings(upstream_url="http://upstream.test:8000", sns_topic_arns=(TOPIC_ARN,)),
        runtime=FakeRuntime(),
        rollout=FakeRollout(),
        upstream_pool=FakePool(),
        cert_fetcher=fetch,
        subscription_confirmer=fetched.append,
        readiness_probe=lambda _url: None,
    )
    return SnsApp(app, fetched)


_TAMPERABLE = ["Message", "MessageId", "Timestamp", "TopicArn", "Type", "Subject"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field_name=st.sampled_from(_TAMPERABLE),
    value=st.text(max_size=40),
    cert_url=st.sampled_from([CERT_URL, *UNTRUSTED_CERT_URLS]),
    forged_signature=st.none() | st.binary(min_size=1, max_size=256),
)
def test_forged_and_tampered_sns_messages_are_refused(
    sns_app: SnsApp,
    signer: SnsSigner,
    field_name: str,
    value: str,
    cert_url: str,
    forged_signature: bytes | None,
) -> None:
    """A signed message with a field changed or a forged signature is refused with a 4xx.

    Certificates are only ever fetched from SNS hosts.
    """
    envelope = signer.notification(json.dumps(ORDER), cert_url=cert_url)
    envelope[field_name] = value + ("" if envelope.get(field_name) != value else "x")
    if forged_signature is not None:
        envelope["Signature"] = base64.b64encode(forged_signature).decode()
    with sns_app.app.test_client() as client:
        response = client.post("/_strangler/sns", data=json.dumps(envelope), headers=_JSON)
    assert 400 <= response.status_code < 500, response.json
    for url in sns_app.fetched:
        check_signing_cert_url(url)
    if cert_url != CERT_URL:
        with pytest.raises(UntrustedSnsUrl):
            check_signing_cert_url(cert_url)


# -- the API document, fuzzed with schemathesis against the process ---------------------


SCHEMA = schemathesis.openapi.from_path(DOC)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


# Operations with a body or query that can be made invalid; the others take no input.
_NEGATIVE = (
    "GET /_strangler/decide",
    "POST /_strangler/notifications",
    "POST /_strangler/sns",
    "PUT /_strangler/rollout",
)
_FUZZED = [(label, schemathesis.GenerationMode.POSITIVE) for label in sorted(OPERATIONS)] + [
    (label, schemathesis.GenerationMode.NEGATIVE) for label in _NEGATIVE
]


@pytest.mark.parametrize(
    ("label", "mode"), _FUZZED, ids=[f"{label} {mode.value}" for label, mode in _FUZZED]
)
def test_the_api_document_fuzzed_gets_no_server_error(
    sidecar: HostileSidecar, label: str, mode: schemathesis.GenerationMode
) -> None:
    """Each documented operation, fed 25 valid (and 25 invalid) cases, answers without a 5xx."""
    calls: list[int] = []

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=OPERATIONS[label].as_strategy(mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=sidecar.url, headers=AUTH, timeout=TIMEOUT)
        calls.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    call()
    assert calls
    sidecar.assert_clean()


def test_the_process_stayed_clean(sidecar: HostileSidecar) -> None:
    """After everything above: healthy, no 5xx in its access log, no outbound, no leaks.

    Prints the access log's answers by status as one JSON line (run with ``-s``).
    """
    assert requests.get(f"{sidecar.url}/_strangler/healthz", timeout=TIMEOUT).status_code == 200
    lines = [json.loads(line) for line in sidecar.log.read_text().splitlines() if line[:1] == "{"]
    statuses = Counter(line["status"] for line in lines if line.get("event") == "request")
    print(json.dumps({"scenario": "hostile_input", "answers_by_status": statuses}, default=str))
    assert sum(statuses.values()) > 250  # hypothesis stops early once a space is exhausted
    assert [status for status in statuses if status >= 500] == []
    sidecar.assert_clean()
