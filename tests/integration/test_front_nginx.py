"""Front mode against the real nginx: ``strangler serve --front nginx`` in front of real upstreams.

What the Python proxy guarantees holds with nginx in the data path: method, path, query,
body, status and headers; hop-by-hop headers dropped; X-Forwarded-*; streamed and
chunked bodies; JSON 502/504; and the order route still goes through Python, which
answers once the order is in the ledger.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port, wait_until
from tests.integration.front_support import running_front
from tests.integration.legacy_sim import RunningSim, SimOptions, new_order, start_legacy_sim
from tests.integration.sidecar_support import Sidecar, sha256
from tests.integration.upstream_app import payload

pytestmark = pytest.mark.slow

NEW_ORDER = new_order("u-front")


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[Sidecar]:
    """Front mode before the test upstream; its order route is ``POST /echo/orders``."""
    with running_front(
        tmp_path_factory.mktemp("front"),
        upstream_url=upstream,
        legacy_url=f"http://127.0.0.1:{free_port()}",
        order_route="POST /echo/orders",
        upstream_timeout_s="1",
    ) as running:
        yield running


def proxied_count(sidecar: Sidecar) -> float:
    """How many requests the Python proxy has forwarded (its latency histogram's count)."""
    text = requests.get(f"{sidecar.url}/metrics", timeout=5).text
    found = re.search(r"^strangler_proxy_request_duration_seconds_count\S* (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_paths_and_queries_arrive_unchanged(
    front: Sidecar, session: requests.Session, method: str
) -> None:
    """Method, raw path (escapes kept), query string and body reach the upstream as sent."""
    answer = session.request(
        method, f"{front.url}/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2", data=b"hi", timeout=10
    ).json()
    assert (answer["method"], answer["raw_uri"], answer["query"]) == (
        method,
        "/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2",
        "x=1&y=%C3%A9&x=2",
    )
    assert (answer["body_length"], answer["body_sha256"]) == (2, sha256(b"hi"))


def test_headers_arrive_hop_by_hop_do_not_and_forwarded_ones_are_appended(
    front: Sidecar, session: requests.Session
) -> None:
    """End-to-end headers arrive; Keep-Alive, TE, Proxy-* do not; X-Forwarded-* are appended."""
    headers = {
        "X-Request-Id": "req-1",
        "Authorization": "Bearer user-token",
        "Cookie": "session=abc",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eA==",
        "Proxy-Connection": "keep-alive",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
    }
    seen = session.get(f"{front.url}/echo/h", headers=headers, timeout=10).json()["headers"]
    host = front.url.removeprefix("http://")
    assert {
        name: seen.get(name) for name in ("x-request-id", "authorization", "cookie", "host")
    } == {
        "x-request-id": "req-1",
        "authorization": "Bearer user-token",
        "cookie": "session=abc",
        "host": host,
    }
    assert not {"keep-alive", "te", "proxy-authorization", "proxy-connection"} & set(seen)
    assert (seen["x-forwarded-for"], seen["x-forwarded-proto"], seen["x-forwarded-host"]) == (
        "203.0.113.9, 127.0.0.1",
        "https, http",
        host,
    )


@pytest.mark.parametrize("code", [201, 301, 404, 500, 503])
def test_status_and_answer_headers_pass_unchanged(
    front: Sidecar, session: requests.Session, code: int
) -> None:
    """The upstream's status, both Set-Cookie headers and its own headers reach the client."""
    response = session.get(f"{front.url}/status/{code}", allow_redirects=False, timeout=10)
    assert response.status_code == code
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["X-Upstream"] == "yes"


def test_large_bodies_stream_both_ways(front: Sidecar, session: requests.Session) -> None:
    """A 5 MiB upload and a 5 MiB download arrive whole; a chunked answer stays chunked."""
    size = 5 * 1024 * 1024
    body = b"".join(payload(size))
    echoed = session.post(f"{front.url}/echo/up", data=body, timeout=30).json()
    assert (echoed["body_length"], echoed["body_sha256"]) == (size, sha256(body))
    down = session.get(f"{front.url}/bytes/{size}", timeout=30)
    assert sha256(down.content) == sha256(body)
    chunked = session.get(f"{front.url}/chunked/{size}", timeout=30)
    assert chunked.headers.get("Transfer-Encoding") == "chunked"
    assert sha256(chunked.content) == sha256(body)


def test_chunked_upload_arrives_whole(front: Sidecar) -> None:
    """A request body sent chunked (no Content-Length) reaches the upstream whole."""
    host, port = front.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    blocks = [b"a" * 1000, b"b" * 70_000, b"c"]
    connection.request("POST", "/echo/chunked", body=iter(blocks), encode_chunked=True)
    answer = connection.getresponse()
    echoed = answer.read()
    connection.close()
    assert answer.status == 200
    assert b'"body_length": 71001' in echoed
    assert sha256(b"".join(blocks)).encode() in echoed


def test_slow_upstream_is_a_json_504(front: Sidecar, session: requests.Session) -> None:
    """An upstream slower than STRANGLER_UPSTREAM_TIMEOUT_S (1 s here) is a JSON 504."""
    response = session.get(f"{front.url}/slow/3000", timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (504, "application/json")
    assert response.json()["error"] == "upstream_timeout"


def test_dead_upstream_is_a_json_502(tmp_path: Path) -> None:
    """An upstream that refuses connections is a JSON 502 naming the failure."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_front(tmp_path, upstream_url=dead, legacy_url=dead) as sidecar:
        response = requests.get(f"{sidecar.url}/anything?x=1", timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (502, "application/json")
    assert response.json()["error"] == "upstream_unavailable"


def test_only_the_order_route_reaches_python(front: Sidecar, session: requests.Session) -> None:
    """POST on the order route goes through the Python proxy; GET there and others do not."""
    before = proxied_count(front)
    session.get(f"{front.url}/echo/orders", timeout=10).raise_for_status()
    session.post(f"{front.url}/echo/other", data=b"{}", timeout=10).raise_for_status()
    assert proxied_count(front) == before
    answer = session.post(f"{front.url}/echo/orders/", data=b"{}", timeout=10)
    assert answer.json()["raw_uri"] == "/echo/orders/"
    assert proxied_count(front) == before + 1


def test_admin_api_and_metrics_are_served_by_python(
    front: Sidecar, session: requests.Session
) -> None:
    """/_strangler/ and /metrics are the sidecar's own, not the upstream's."""
    assert session.get(f"{front.url}/_strangler/healthz", timeout=5).json() == {"status": "ok"}
    metrics = session.get(f"{front.url}/metrics", timeout=5)
    assert "strangler_proxy_request_duration_seconds" in metrics.text


@pytest.mark.parametrize(
    ("method", "path", "server"),
    [
        ("GET", "/echo/anything", "nginx to the upstream"),
        ("GET", "/status/404", "nginx to the upstream, an error"),
        ("GET", "/slow/3000", "nginx's own 504"),
        ("POST", "/echo/orders", "Python's order route"),
        ("GET", "/_strangler/healthz", "Python's own API"),
        ("GET", "/metrics", "Python's metrics"),
    ],
    ids=["proxied", "proxied-error", "nginx-504", "order-route", "own-api", "metrics"],
)
def test_every_answer_says_nosniff_once(
    front: Sidecar, session: requests.Session, method: str, path: str, server: str
) -> None:
    """Whoever answers (upstream, nginx, Python), X-Content-Type-Options is nosniff, once."""
    answer = session.request(method, f"{front.url}{path}", data=b"{}", timeout=10)
    assert answer.raw.headers.getlist("X-Content-Type-Options") == ["nosniff"], server


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """The legacy simulator (order service and legacy app), batch jobs every second."""
    with start_legacy_sim(tmp_path_factory.mktemp("sim"), SimOptions(job_interval=1.0)) as running:
        yield running


def test_order_is_in_the_ledger_when_its_answer_arrives(tmp_path: Path, sim: RunningSim) -> None:
    """Through nginx, a created order is known to the sidecar as soon as the 201 arrives."""
    with running_front(
        tmp_path,
        upstream_url=sim.url,
        legacy_url=sim.url,
        args=("--front", "nginx", "--routing", "process"),
    ) as sidecar:
        created = requests.post(f"{sidecar.url}/orders", json=NEW_ORDER, timeout=10)
        assert created.status_code == 201
        order_id = created.json()["order_id"]
        known = requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=5)
        assert (known.status_code, known.json()["source"]) == (200, "proxy")
        seen: dict[str, object] = {}

        def fulfilled() -> bool:
            seen.update(
                requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=5).json()
            )
            return seen.get("status") == "fulfilled"

        wait_until(
            fulfilled,
            timeout=30,
            what=f"order {order_id} to be fulfilled by the routing process",
            detail=lambda: f"last seen: {seen}\nsidecar log:\n{sidecar.log_tail()}",
        )
