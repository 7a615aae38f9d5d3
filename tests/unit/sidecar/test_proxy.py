"""The pass-through proxy: what reaches the upstream and what comes back."""

from __future__ import annotations

import io

import pytest
import urllib3
from flask.testing import FlaskClient
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import SKIP_HEADER

from strangler.sidecar.access_log import AccessLog
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.proxy import ProxyApp
from tests.unit.sidecar.fakes import FakeAnswer, FakePool


def test_method_path_query_and_body_reach_the_upstream(client: FlaskClient, pool: FakePool) -> None:
    """Method, raw path, query string and body are forwarded unchanged."""
    client.put("/a/b%2Fc?x=1&y=%20", data=b"payload", content_type="text/plain")
    assert (
        pool.last.method,
        pool.last.url,
        pool.last.body,
    ) == ("PUT", "/a/b%2Fc?x=1&y=%20", b"payload")
    assert pool.last.headers["Content-Type"] == "text/plain"
    assert pool.last.headers["Content-Length"] == "7"


def test_status_body_and_headers_come_back(client: FlaskClient, pool: FakePool) -> None:
    """The upstream's status, reason, body and repeated headers reach the client."""
    pool.answer = FakeAnswer(
        status=418,
        reason="I'm A Teapot",
        body=b"short and stout",
        headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Thing", "yes")],
    )
    response = client.get("/tea")
    assert (
        response.status_code,
        response.status,
        response.data,
    ) == (418, "418 I'm A Teapot", b"short and stout")
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Thing"] == "yes"


@pytest.mark.parametrize(
    "name",
    ["Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Foo", "Expect"],
    ids=str.lower,
)
def test_hop_by_hop_request_headers_are_dropped(
    client: FlaskClient, pool: FakePool, name: str
) -> None:
    """Hop-by-hop request headers (and Expect, already answered) stay with the sidecar."""
    client.get("/", headers={name: "x", "X-Kept": "1"})
    sent = {k.lower() for k in pool.last.headers}
    assert name.lower() not in sent
    assert "x-kept" in sent


def test_headers_named_by_connection_are_dropped(client: FlaskClient, pool: FakePool) -> None:
    """Headers the Connection header names are hop-by-hop too, and so is Connection."""
    client.get("/", headers={"Connection": "close, X-Secret", "X-Secret": "1", "X-Open": "2"})
    sent = {k.lower() for k in pool.last.headers}
    assert {"connection", "x-secret"}.isdisjoint(sent)
    assert "x-open" in sent


def test_hop_by_hop_response_headers_are_dropped(client: FlaskClient, pool: FakePool) -> None:
    """Hop-by-hop answer headers, those Connection names, Date and Server are not passed on."""
    pool.answer = FakeAnswer(
        headers=[
            ("Connection", "X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", "Basic"),
            ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("Server", "upstream/1.0"),
            ("X-Public", "2"),
        ]
    )
    response = client.get("/")
    names = {k.lower() for k in response.headers.keys()}  # noqa: SIM118
    assert {"x-private", "keep-alive", "proxy-authenticate", "server"}.isdisjoint(names)
    assert response.headers.get("Server") != "upstream/1.0"
    assert response.headers["X-Public"] == "2"


def test_forwarded_headers_are_appended(client: FlaskClient, pool: FakePool) -> None:
    """X-Forwarded-For/-Proto/-Host get the client's values appended to what came in."""
    client.get(
        "/",
        headers={"X-Forwarded-For": "203.0.113.9", "Host": "shop.example"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    sent = pool.last.headers
    assert sent["X-Forwarded-For"] == "203.0.113.9, 198.51.100.7"
    assert sent["X-Forwarded-Proto"] == "http"
    assert sent["X-Forwarded-Host"] == "shop.example"
    assert sent["Host"] == "shop.example"


@pytest.mark.parametrize(
    ("client_headers", "expected"),
    [
        ({}, (SKIP_HEADER, SKIP_HEADER)),
        ({"HTTP_USER_AGENT": "curl/8", "HTTP_ACCEPT_ENCODING": "gzip"}, ("curl/8", "gzip")),
    ],
    ids=["absent", "present"],
)
def test_no_client_values_are_invented(
    client_headers: dict[str, str], expected: tuple[str, str]
) -> None:
    """User-Agent and Accept-Encoding go as the client sent them, and are not added."""
    pool = call_proxy(client_headers)
    assert expected == (pool.last.headers["User-Agent"], pool.last.headers["Accept-Encoding"])


def test_proxy_does_not_follow_redirects_or_retry_reads(
    client: FlaskClient, pool: FakePool
) -> None:
    """Redirects go back to the client, and only connection failures are retried once."""
    pool.answer = FakeAnswer(status=302, headers=[("Location", "/elsewhere")], body=b"")
    response = client.get("/old")
    retries = pool.last.kwargs["retries"]
    assert (response.status_code, response.headers["Location"]) == (302, "/elsewhere")
    assert (pool.last.kwargs["redirect"], retries.connect, retries.read) == (False, 1, 0)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NewConnectionError(None, "refused"), 502, "upstream_unavailable"),  # type: ignore[arg-type]
        (ProtocolError("reset"), 502, "upstream_unavailable"),
        (ConnectionRefusedError(111, "refused"), 502, "upstream_unavailable"),
        (ReadTimeoutError(None, "/", "read timed out"), 504, "upstream_timeout"),  # type: ignore[arg-type]
        (ConnectTimeoutError("connect timed out"), 504, "upstream_timeout"),
        (
            MaxRetryError(None, "/", ConnectTimeoutError("connect timed out")),  # type: ignore[arg-type]
            504,
            "upstream_timeout",
        ),
        (
            MaxRetryError(None, "/", NewConnectionError(None, "refused")),  # type: ignore[arg-type]
            502,
            "upstream_unavailable",
        ),
    ],
    ids=[
        "refused",
        "reset",
        "os-refused",
        "read-timeout",
        "connect-timeout",
        "retried-timeout",
        "retried-refused",
    ],
)
def test_upstream_failures_become_json_errors(
    client: FlaskClient, pool: FakePool, error: Exception, status: int, code: str
) -> None:
    """A timeout becomes 504 and any other upstream failure 502, both with a JSON error."""
    pool.error = error
    response = client.get("/orders")
    assert (status, code) == (response.status_code, response.json["error"])
    assert response.content_type == "application/json"


def test_large_request_bodies_are_streamed(client: FlaskClient, pool: FakePool) -> None:
    """A body over 64 KiB is handed to urllib3 as a stream, not read into memory first."""
    seen: list[object] = []
    original = pool.urlopen

    def spy(method: str, url: str, **kwargs: object) -> urllib3.BaseHTTPResponse:
        seen.append(kwargs["body"])
        return original(method, url, **kwargs)

    pool.urlopen = spy  # type: ignore[method-assign]
    payload = b"x" * (200 * 1024)
    client.post("/upload", data=payload)
    assert not isinstance(seen[0], bytes)
    assert payload == pool.last.body


def test_large_answers_are_streamed_in_chunks(client: FlaskClient, pool: FakePool) -> None:
    """An answer without Content-Length is passed on chunk by chunk, whole."""
    body = bytes(range(256)) * 1024
    pool.answer = FakeAnswer(body=body, content_length=False)
    response = client.get("/big", buffered=False)
    chunks = list(response.response)
    response.close()
    assert (body, True) == (b"".join(chunks), len(chunks) > 1)


def test_path_without_raw_uri_is_requoted_from_its_bytes() -> None:
    """Without RAW_URI the path is quoted from the request's bytes (latin-1 in WSGI)."""
    pool = call_proxy({"PATH_INFO": "/caf\xc3\xa9 x", "QUERY_STRING": ""})
    assert pool.last.url == "/caf%C3%A9%20x"


def test_upstream_base_path_is_kept() -> None:
    """An upstream URL with a path prefixes every forwarded path."""
    pool = call_proxy({"PATH_INFO": "/x y", "QUERY_STRING": "q=1"}, "http://upstream.test/base/")
    assert pool.last.url == "/base/x%20y?q=1"
    assert pool.last.headers["X-Forwarded-Host"] == "sidecar:8080"


def call_proxy(environ: dict[str, str], upstream_url: str = "http://upstream.test") -> FakePool:
    """Send one raw WSGI request through a ProxyApp on a fake pool; return the pool."""
    pool = FakePool()
    proxy = ProxyApp(
        upstream_url,
        pool=pool,
        timeout_s=1.0,
        metrics=SidecarMetrics(),
        access_log=AccessLog(),
    )
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "sidecar",
        "SERVER_PORT": "8080",
    }
    body = proxy({**base, **environ}, lambda *_: None)
    b"".join(body)
    getattr(body, "close", lambda: None)()
    return pool
