"""Proxy fidelity through a real ``strangler serve`` in front of a real upstream (loopback)."""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port
from tests.integration.sidecar_support import Sidecar, running_sidecar, sha256
from tests.integration.upstream_app import payload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[Sidecar]:
    """A sidecar in front of the test upstream; the legacy app is not running."""
    workdir = tmp_path_factory.mktemp("sidecar")
    legacy = f"http://127.0.0.1:{free_port()}"
    with running_sidecar(workdir, upstream_url=upstream, legacy_url=legacy) as running:
        yield running


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_paths_and_queries_arrive_unchanged(
    sidecar: Sidecar, session: requests.Session, method: str
) -> None:
    """Method, raw path (escapes kept) and query string reach the upstream as sent."""
    answer = session.request(
        method, f"{sidecar.url}/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2", data=b"hi", timeout=10
    ).json()
    assert (answer["method"], answer["raw_uri"], answer["query"]) == (
        method,
        "/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2",
        "x=1&y=%C3%A9&x=2",
    )
    assert (answer["body_length"], answer["body_sha256"]) == (2, sha256(b"hi"))


def test_request_headers_arrive_and_hop_by_hop_ones_do_not(
    sidecar: Sidecar, session: requests.Session
) -> None:
    """End-to-end headers arrive; Connection-named, Keep-Alive and Proxy-* do not."""
    headers = {
        "X-Request-Id": "req-1",
        "Authorization": "Bearer user-token",
        "Cookie": "session=abc",
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic eA==",
        "X-Forwarded-For": "203.0.113.9",
    }
    seen = session.get(f"{sidecar.url}/echo/h", headers=headers, timeout=10).json()["headers"]
    assert (seen["x-request-id"], seen["authorization"], seen["cookie"]) == (
        "req-1",
        "Bearer user-token",
        "session=abc",
    )
    assert {"x-secret-hop", "keep-alive", "proxy-authorization"}.isdisjoint(seen)
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == sidecar.url.removeprefix("http://")
    assert seen["host"] == sidecar.url.removeprefix("http://")


@pytest.mark.parametrize("code", [200, 201, 204, 301, 404, 418, 500, 503])
def test_status_codes_and_response_headers_come_back(
    sidecar: Sidecar, session: requests.Session, code: int
) -> None:
    """Every status comes back as is (redirects not followed), with repeated headers intact."""
    response = session.get(f"{sidecar.url}/status/{code}", allow_redirects=False, timeout=10)
    assert response.status_code == code
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["X-Upstream"] == "yes"
    if code == 301:
        assert response.headers["Location"] == "/echo/moved"


def test_head_has_headers_and_no_body(sidecar: Sidecar, session: requests.Session) -> None:
    """HEAD gets the upstream's Content-Length and no body."""
    response = session.head(f"{sidecar.url}/bytes/5000", timeout=10)
    assert (response.status_code, response.headers["Content-Length"], response.content) == (
        200,
        "5000",
        b"",
    )


@pytest.mark.parametrize("kind", ["bytes", "chunked"])
def test_large_answers_arrive_whole(sidecar: Sidecar, kind: str) -> None:
    """An 8 MiB answer, with Content-Length or chunked, arrives byte for byte."""
    size = 8 * 1024 * 1024
    response = requests.get(f"{sidecar.url}/{kind}/{size}", stream=True, timeout=30)
    digest = hashlib.sha256()
    for block in response.iter_content(256 * 1024):
        digest.update(block)
    assert digest.hexdigest() == sha256(b"".join(payload(size)))
    if kind == "chunked":
        assert response.headers.get("Transfer-Encoding") == "chunked"
    else:
        assert response.headers["Content-Length"] == str(size)


def test_large_upload_with_content_length(sidecar: Sidecar) -> None:
    """A 6 MiB body with Content-Length reaches the upstream whole."""
    body = b"".join(payload(6 * 1024 * 1024))
    answer = requests.post(f"{sidecar.url}/echo/up", data=body, timeout=30).json()
    assert (answer["body_length"], answer["body_sha256"]) == (len(body), sha256(body))
    assert answer["headers"]["content-length"] == str(len(body))


def test_chunked_upload(sidecar: Sidecar) -> None:
    """A chunked 3 MiB upload (no Content-Length) reaches the upstream whole."""
    blocks = list(payload(3 * 1024 * 1024))
    answer = requests.post(f"{sidecar.url}/echo/up", data=iter(blocks), timeout=30).json()
    assert (answer["body_length"], answer["body_sha256"]) == (
        3 * 1024 * 1024,
        sha256(b"".join(blocks)),
    )


def test_upstream_connections_are_pooled(sidecar: Sidecar) -> None:
    """Sequential requests through new client connections reuse pooled upstream connections."""
    host, port = sidecar.url.removeprefix("http://").split(":")
    upstream_ports = set()
    for _ in range(20):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/echo/pool")
        upstream_ports.add(json.loads(conn.getresponse().read())["client_port"])
        conn.close()
    assert len(upstream_ports) <= 2


def test_upstream_down_is_502(tmp_path: Path) -> None:
    """With nothing listening upstream, proxied requests get a JSON 502; own paths work."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_sidecar(tmp_path, upstream_url=dead, legacy_url=dead) as sidecar:
        response = requests.get(f"{sidecar.url}/orders", timeout=10)
        ready = requests.get(f"{sidecar.url}/_strangler/readyz", timeout=10)
    assert (response.status_code, response.json()["error"]) == (502, "upstream_unavailable")
    assert (ready.status_code, ready.json()["checks"]["upstream"].startswith("cannot")) == (
        503,
        True,
    )


def test_slow_upstream_is_504(tmp_path: Path, upstream: str) -> None:
    """An upstream slower than STRANGLER_UPSTREAM_TIMEOUT_S gets a JSON 504."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_sidecar(
        tmp_path, upstream_url=upstream, legacy_url=dead, upstream_timeout_s="1"
    ) as sidecar:
        response = requests.get(f"{sidecar.url}/slow/2500", timeout=10)
    assert (response.status_code, response.json()["error"]) == (504, "upstream_timeout")


def test_several_workers_share_metrics_and_stop_gracefully(tmp_path: Path, upstream: str) -> None:
    """With two worker processes, /metrics counts every worker; SIGTERM stops both cleanly."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_sidecar(
        tmp_path, upstream_url=upstream, legacy_url=dead, serve_workers="2"
    ) as sidecar:
        for _ in range(12):
            assert requests.get(f"{sidecar.url}/echo/m", timeout=10).status_code == 200
        metrics = requests.get(f"{sidecar.url}/metrics", timeout=10).text
        process = sidecar.process
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert "strangler_proxy_request_duration_seconds_count 12.0" in metrics
    stopped = sidecar.log.read_text().count('"event": "sidecar_workers_stopped"')
    assert (code, stopped) == (0, 2)
