"""The proxy contract, over both fronts: ``strangler serve --front python`` and ``--front nginx``.

Whatever serves the public port, a client sees the same proxy: method, raw path, query,
body, status and headers preserved; hop-by-hop headers dropped; X-Forwarded-* appended;
large and chunked bodies streamed both ways; pooled upstream connections; a JSON 502 for
a dead upstream and a JSON 504 for a slow one; nosniff on every answer; the sidecar's own
paths served by the sidecar; and an order-route answer sent only once the order is in the
ledger. Real processes on loopback: the echoing test upstream (upstream_app.py), the
legacy simulator, and the sidecar with the Python proxy or real nginx in front.
What only one front has is tested beside it: test_sidecar_proxy.py (the Python front's
workers), test_front_nginx.py, test_front_intake_only.py and test_front_supervision.py.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port, wait_until
from tests.integration.front_support import FRONTS, running_with_front
from tests.integration.legacy_sim import RunningSim, new_order
from tests.integration.sidecar_support import Sidecar, sha256
from tests.integration.upstream_app import payload

pytestmark = pytest.mark.slow

ORDER_ROUTE = "POST /echo/orders"
UPSTREAM_TIMEOUT_S = "1"


@pytest.fixture(scope="module", params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    """Which front serves the public port: ``python`` or ``nginx``."""
    kind: str = request.param
    return kind


@pytest.fixture(scope="module")
def sidecar(
    tmp_path_factory: pytest.TempPathFactory, upstream: str, front: str
) -> Iterator[Sidecar]:
    """The sidecar with ``front`` before the test upstream; the legacy app is not running.

    Its order route is ``POST /echo/orders``; the upstream timeout is 1 s.
    """
    with running_with_front(
        front,
        tmp_path_factory.mktemp(f"front-{front}"),
        upstream_url=upstream,
        legacy_url=f"http://127.0.0.1:{free_port()}",
        order_route=ORDER_ROUTE,
        upstream_timeout_s=UPSTREAM_TIMEOUT_S,
    ) as running:
        yield running


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_paths_and_queries_arrive_unchanged(
    sidecar: Sidecar, session: requests.Session, method: str
) -> None:
    """Method, raw path (escapes kept), query string and body reach the upstream as sent."""
    answer = session.request(
        method, f"{sidecar.url}/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2", data=b"hi", timeout=10
    ).json()
    assert (answer["method"], answer["raw_uri"], answer["query"]) == (
        method,
        "/echo/a%2Fb/c%20d?x=1&y=%C3%A9&x=2",
        "x=1&y=%C3%A9&x=2",
    )
    assert (answer["body_length"], answer["body_sha256"]) == (2, sha256(b"hi"))


def test_headers_arrive_and_hop_by_hop_ones_do_not(
    sidecar: Sidecar, session: requests.Session
) -> None:
    """End-to-end headers and Host arrive; Keep-Alive, TE and Proxy-* do not."""
    headers = {
        "X-Request-Id": "req-1",
        "Authorization": "Bearer user-token",
        "Cookie": "session=abc",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eA==",
        "Proxy-Connection": "keep-alive",
    }
    seen = session.get(f"{sidecar.url}/echo/h", headers=headers, timeout=10).json()["headers"]
    assert {
        name: seen.get(name) for name in ("x-request-id", "authorization", "cookie", "host")
    } == {
        "x-request-id": "req-1",
        "authorization": "Bearer user-token",
        "cookie": "session=abc",
        "host": sidecar.url.removeprefix("http://"),
    }
    assert not {"keep-alive", "te", "proxy-authorization", "proxy-connection"} & set(seen)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/echo/f"), ("POST", "/echo/orders")], ids=["proxied", "order"]
)
@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        ({}, ("127.0.0.1", "http", "{host}")),
        (
            {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "shop.example",
            },
            ("203.0.113.9, 127.0.0.1", "https, http", "shop.example, {host}"),
        ),
    ],
    ids=["set", "appended"],
)
def test_forwarded_headers_are_set_or_appended_to(
    sidecar: Sidecar,
    session: requests.Session,
    method: str,
    path: str,
    incoming: dict[str, str],
    expected: tuple[str, str, str],
) -> None:
    """X-Forwarded-For, -Proto and -Host get the client's address, scheme and host appended,
    on the order route (Python under either front) as on any other path."""
    host = sidecar.url.removeprefix("http://")
    answer = session.request(method, f"{sidecar.url}{path}", headers=incoming, timeout=10)
    seen = answer.json()["headers"]
    forwarded = (seen["x-forwarded-for"], seen["x-forwarded-proto"], seen["x-forwarded-host"])
    assert forwarded == (expected[0], expected[1], expected[2].format(host=host))


def test_headers_named_in_connection(
    sidecar: Sidecar, session: requests.Session, front: str
) -> None:
    """The Python front drops a header the client names in Connection; nginx passes it on.

    The one documented difference (docs/sidecar.md): nginx cannot drop headers by a name
    given in the request.
    """
    headers = {"Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1"}
    seen = session.get(f"{sidecar.url}/echo/c", headers=headers, timeout=10).json()["headers"]
    expected = {"python": None, "nginx": "1"}[front]
    assert expected == seen.get("x-secret-hop")


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
    """An 8 MiB answer, with Content-Length or chunked, arrives byte for byte, streamed."""
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
    """A 6 MiB body with Content-Length reaches the upstream whole, with its length."""
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


def test_chunked_upload_in_uneven_chunks(sidecar: Sidecar) -> None:
    """A body sent in chunks of 1,000, 70,000 and 1 bytes reaches the upstream whole."""
    host, port = sidecar.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    blocks = [b"a" * 1000, b"b" * 70_000, b"c"]
    connection.request("POST", "/echo/chunked", body=iter(blocks), encode_chunked=True)
    answer = connection.getresponse()
    echoed = json.loads(answer.read())
    connection.close()
    assert (answer.status, echoed["body_length"], echoed["body_sha256"]) == (
        200,
        71_001,
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


def test_slow_upstream_is_a_json_504(sidecar: Sidecar, session: requests.Session) -> None:
    """An upstream slower than STRANGLER_UPSTREAM_TIMEOUT_S (1 s here) is a JSON 504."""
    response = session.get(f"{sidecar.url}/slow/3000", timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (504, "application/json")
    assert response.json()["error"] == "upstream_timeout"


def test_dead_upstream_is_a_json_502(tmp_path: Path, front: str) -> None:
    """With nothing listening upstream, proxied requests get a JSON 502; own paths work."""
    dead = f"http://127.0.0.1:{free_port()}"
    with running_with_front(front, tmp_path, upstream_url=dead, legacy_url=dead) as sidecar:
        response = requests.get(f"{sidecar.url}/orders?x=1", timeout=10)
        ready = requests.get(f"{sidecar.url}/_strangler/readyz", timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (502, "application/json")
    assert response.json()["error"] == "upstream_unavailable"
    assert (ready.status_code, ready.json()["checks"]["upstream"].startswith("cannot")) == (
        503,
        True,
    )


def test_own_paths_are_served_by_the_sidecar(sidecar: Sidecar, session: requests.Session) -> None:
    """/_strangler/ and /metrics are the sidecar's own, never the upstream's."""
    health = session.get(f"{sidecar.url}/_strangler/healthz", timeout=5)
    metrics = session.get(f"{sidecar.url}/metrics", timeout=5)
    assert (health.json(), "X-Upstream" in health.headers) == ({"status": "ok"}, False)
    assert "strangler_proxy_request_duration_seconds" in metrics.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/echo/anything"),
        ("GET", "/status/404"),
        ("GET", "/slow/3000"),
        ("POST", "/echo/orders"),
        ("GET", "/_strangler/healthz"),
        ("GET", "/metrics"),
    ],
    ids=["proxied", "proxied-error", "timeout-504", "order-route", "own-api", "metrics"],
)
def test_every_answer_says_nosniff_once(
    sidecar: Sidecar, session: requests.Session, method: str, path: str
) -> None:
    """Whoever answers (upstream, front, sidecar), X-Content-Type-Options is nosniff, once."""
    answer = session.request(method, f"{sidecar.url}{path}", data=b"{}", timeout=10)
    assert answer.raw.headers.getlist("X-Content-Type-Options") == ["nosniff"]


def test_order_is_in_the_ledger_when_its_answer_arrives(
    tmp_path: Path, front: str, sim_with_jobs: RunningSim
) -> None:
    """A created order is known to the sidecar as soon as the 201 arrives, then routed."""
    with running_with_front(
        front,
        tmp_path,
        upstream_url=sim_with_jobs.url,
        legacy_url=sim_with_jobs.url,
        args=("--routing", "process"),
    ) as sidecar:
        created = requests.post(f"{sidecar.url}/orders", json=new_order("u-front"), timeout=10)
        assert created.status_code == 201, created.text
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
