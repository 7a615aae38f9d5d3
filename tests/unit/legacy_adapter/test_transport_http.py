"""The transport over real HTTP on loopback: what goes on the wire, connection reuse,
read timeouts, connections the app drops."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from strangler.legacy_adapter import LegacyClient, LegacyUnavailable
from tests.helpers import wait_until
from tests.unit.legacy_adapter.conftest import FakeClock
from tests.unit.legacy_adapter.payloads import claim_json, job_run_json, order_json


@dataclass(frozen=True)
class Seen:
    """One request as the server read it off the wire."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class App:
    """A legacy app on loopback: answers order_json() (or what ``answer`` says), counts
    the connections it accepted and closed."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    accepted: int = 0
    closed: int = 0
    # Per request: "answer", "silent" (hold it unanswered), "drop" (close, no answer).
    behaviour: Callable[[int], str] = lambda _index: "answer"
    close_after_answer: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with app.lock:
                app.accepted += 1
                self.connection_number = app.accepted

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with app.lock:
                index = len(app.seen)
                app.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        self.connection_number,
                    )
                )
            behaviour = app.behaviour(index)
            if behaviour == "silent":
                app.release.wait(10)
                self.close_connection = True
                return
            if behaviour == "drop":
                self.close_connection = True
                return
            payload = _payload(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = app.close_after_answer

    return Handler


def _payload(path: str) -> bytes:
    if path.endswith("/claim"):
        return json.dumps(claim_json()).encode()
    if path.startswith("/jobs/"):
        return json.dumps(job_run_json()).encode()
    if path.startswith("/orders?"):
        return json.dumps({"orders": [order_json()], "has_more": False}).encode()
    return json.dumps(order_json()).encode()


class _Server(ThreadingHTTPServer):
    """Counts a connection closed once its socket is (not when its handler returns)."""

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: App
    ) -> None:
        super().__init__(address, handler)
        self.app = app

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.app.lock:
            self.app.closed += 1


@pytest.fixture
def app() -> Iterator[App]:
    """The app, serving on a free loopback port until the test ends."""
    state = App()
    server = _Server(("127.0.0.1", 0), _handler(state), state)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def test_what_goes_on_the_wire(app: App) -> None:
    """Method, path, query, headers and body of a read, a listing, a keyed POST with a
    JSON body and a bodyless POST; the credentials in the Authorization header."""
    with LegacyClient(app.url, token="tok-1") as legacy:
        legacy.get_order("ord 1")
        legacy.list_orders(status="pending", limit=5)
        legacy.claim("ord-1")
        legacy.run_job("fraud_scan")
    get, listing, claim, job = app.seen
    assert (get.method, get.path, get.body) == ("GET", "/orders/ord%201", b"")
    assert listing.path == "/orders?limit=5&status=pending"
    assert (claim.method, claim.path) == ("POST", "/orders/ord-1/claim")
    assert json.loads(claim.body) == {"dry_run": False}
    assert claim.headers["content-type"] == "application/json"
    assert claim.headers["content-length"] == str(len(claim.body))
    assert claim.headers["idempotency-key"] == "strangler:claim:ord-1"
    assert (job.method, job.path, job.headers["content-length"], job.body) == (
        "POST",
        "/jobs/fraud_scan/run",
        "0",
        b"",
    )
    for request in app.seen:
        assert request.headers["authorization"] == "Bearer tok-1"
        assert request.headers["accept"] == "application/json"
        assert request.headers["host"] == app.url.removeprefix("http://")
    assert "idempotency-key" not in get.headers


def test_calls_reuse_one_connection(app: App) -> None:
    """Calls one after another go over one kept-alive connection."""
    with LegacyClient(app.url) as legacy:
        for _ in range(20):
            legacy.get_order("ord-1")
    assert (len(app.seen), app.accepted) == (20, 1)


def test_threads_share_a_bounded_pool(app: App) -> None:
    """Calls from several threads at once each get a connection and all answer."""
    with LegacyClient(app.url) as legacy:
        threads = [
            threading.Thread(target=lambda: [legacy.get_order("ord-1") for _ in range(10)])
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(app.seen) == 40
    assert app.accepted <= 4


def test_a_connection_the_app_closed_is_replaced_not_failed(app: App) -> None:
    """An app that closes each connection after its answer costs no failed attempt: the
    next call opens a new connection."""
    app.close_after_answer = True
    with capture_logs() as logs, LegacyClient(app.url, retries=0) as legacy:
        for call in range(3):
            legacy.get_order("ord-1")
            wait_until(lambda call=call: app.closed == call + 1, 5, "the app closing it")
    assert (len(app.seen), app.accepted) == (3, 3)
    assert logs == []


def test_a_silent_app_times_out_every_attempt(app: App, clock: FakeClock) -> None:
    """An app that takes a request and never answers: each attempt gives up after the
    read timeout, the call after its retries, saying how long it waited."""
    app.behaviour = lambda _index: "silent"
    legacy = LegacyClient(app.url, read_timeout=0.2, retries=1, sleep=clock.sleep)
    started = time.monotonic()
    with legacy, pytest.raises(LegacyUnavailable, match=r"no answer within 0\.2s") as caught:
        legacy.get_order("ord-1")
    assert time.monotonic() - started < 2
    assert (caught.value.attempts, len(app.seen), len(clock.sleeps)) == (2, 2, 1)


def test_a_dropped_connection_is_retried_on_a_new_one(app: App, clock: FakeClock) -> None:
    """The app closes the connection without answering: the attempt fails as a broken
    connection and the retry, on a new connection, gets the answer."""
    app.behaviour = lambda index: "drop" if index == 0 else "answer"
    with capture_logs() as logs, LegacyClient(app.url, sleep=clock.sleep) as legacy:
        assert legacy.get_order("ord-1").order_id == "ord-1"
    assert [entry["event"] for entry in logs] == ["legacy_call_retry"]
    assert "connection failed" in logs[0]["error"]
    assert [seen.connection for seen in app.seen] == [1, 2]


def test_a_dropped_connection_without_retries_is_unavailable(app: App) -> None:
    """A call sent once (a job run) on a connection the app drops raises LegacyUnavailable
    with the broken connection as its cause."""
    app.behaviour = lambda _index: "drop"
    with LegacyClient(app.url) as legacy, pytest.raises(LegacyUnavailable) as caught:
        legacy.run_job("fraud_scan")
    assert "connection failed" in str(caught.value)
    assert (caught.value.attempts, len(app.seen)) == (1, 1)


def test_an_app_that_accepts_no_connection_times_out_every_attempt(clock: FakeClock) -> None:
    """A listening socket whose accept queue is full (an app too busy to accept): each
    attempt gives up after the connect timeout, saying so."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for waiting in queued:
            waiting.setblocking(False)
            waiting.connect_ex(("127.0.0.1", port))
        legacy = LegacyClient(
            f"http://127.0.0.1:{port}", connect_timeout=0.2, retries=1, sleep=clock.sleep
        )
        started = time.monotonic()
        with legacy, pytest.raises(LegacyUnavailable, match=r"no connection within 0\.2s") as e:
            legacy.get_order("ord-1")
        assert time.monotonic() - started < 2
        assert e.value.attempts == 2
        for waiting in queued:
            waiting.close()


def test_an_environment_proxy_carries_the_calls(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY, read when the client is built, carries its calls (absolute-form
    requests); NO_PROXY naming the app's host sends them straight to it."""
    monkeypatch.setenv("HTTP_PROXY", app.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with LegacyClient("http://legacy.test:8001", token="t") as legacy:
        legacy.get_order("ord-1")
    assert app.seen[0].path == "http://legacy.test:8001/orders/ord-1"
    assert app.seen[0].headers["authorization"] == "Bearer t"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with LegacyClient(app.url) as legacy:
        legacy.get_order("ord-1")
    assert app.seen[1].path == "/orders/ord-1"


def test_close_releases_the_connections(app: App) -> None:
    """close() closes the kept connection; a call after it opens a new one."""
    legacy = LegacyClient(app.url)
    legacy.get_order("ord-1")
    legacy.close()
    wait_until(lambda: app.closed == 1, 5, "the app seeing the connection closed")
    legacy.get_order("ord-1")
    legacy.close()
    assert [seen.connection for seen in app.seen] == [1, 2]
