"""The pass-through reverse proxy: a lean WSGI callable over a urllib3 connection pool.

Kept out of Flask on purpose: this is the hot path of every request to the order
service, and routing, request objects and context locals would cost more than the
forwarding itself. Method, path, query, body, status and headers are preserved, except:

- hop-by-hop headers are dropped both ways (Connection and the headers it names,
  Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*), and Expect, which the
  sidecar's own server already answered;
- X-Forwarded-For, -Proto and -Host get the client's values appended;
- the upstream's Date and Server give way to the sidecar server's own (as nginx does).

Bodies up to 64 KiB are forwarded in one piece; larger or chunked ones are streamed
both ways. An upstream timeout becomes a JSON 504, any other upstream failure a JSON 502.

The order-creating route is the exception to streaming: its 2xx answer is read first
(up to the tee limit) and handed to ``on_answer``, which makes the order durable, and
only then sent on, unchanged; a client that sees the 2xx has an order in the ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Any, Protocol
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, TimeoutError
from urllib3.util import SKIP_HEADER
from werkzeug.wsgi import LimitedStream

from strangler.sidecar.access_log import AccessLog
from strangler.sidecar.metrics import SidecarMetrics

__all__ = ["HOP_BY_HOP", "ProxyApp", "UpstreamPool", "make_upstream_pool"]

StartResponse = Callable[..., Any]
WSGIEnviron = dict[str, Any]

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
_DROPPED_REQUEST = HOP_BY_HOP | {"expect"}
_DROPPED_RESPONSE = HOP_BY_HOP | {"date", "server"}
_INLINE_BODY_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_ENVIRON_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


class UpstreamPool(Protocol):
    """What the proxy needs from a urllib3 connection pool (a test double can stand in)."""

    def urlopen(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse: ...


AnswerHook = Callable[[str, int, bytes | None], str | None]
"""Called with (path, status, body or None when over the tee limit) before an intercepted
answer is sent; returns the order_id for the access log when it has one."""


def make_upstream_pool(upstream_url: str, *, maxsize: int) -> urllib3.HTTPConnectionPool:
    """A keep-alive pool to the upstream's scheme, host and port, ``maxsize`` connections."""
    return urllib3.connection_from_url(upstream_url, maxsize=maxsize, block=False)


class ProxyApp:
    """WSGI callable forwarding every request to ``upstream_url``.

    ``intercept(method, path)`` says whether a request is the order-creating one; the
    2xx answers of those are read (up to ``tee_limit`` bytes) and handed to ``on_answer``
    before the first byte is passed to the server.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        pool: UpstreamPool,
        timeout_s: float,
        metrics: SidecarMetrics,
        access_log: AccessLog,
        intercept: Callable[[str, str], bool] = lambda _method, _path: False,
        on_answer: AnswerHook | None = None,
        tee_limit: int = 1024 * 1024,
    ) -> None:
        self._prefix = urlsplit(upstream_url).path.rstrip("/")
        self._pool = pool
        self._timeout = urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s)
        # One retry, for connections only: nothing has reached the upstream yet then.
        self._retries = urllib3.Retry(
            total=1, connect=1, read=0, status=0, other=0, redirect=False, raise_on_status=False
        )
        self._metrics = metrics
        self._latency = metrics.proxy_latency
        self._access_log = access_log
        self._intercept = intercept
        self._on_answer = on_answer
        self.tee_limit = tee_limit

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method: str = environ["REQUEST_METHOD"]
        path: str = environ.get("PATH_INFO", "") or "/"
        try:
            upstream = self._pool.urlopen(
                method,
                self._target(environ),
                body=_request_body(environ),
                headers=_request_headers(environ),
                retries=self._retries,
                redirect=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except (HTTPError, OSError) as exc:
            return self._failed(exc, method, path, started, start_response)
        self._latency.observe(time.perf_counter() - started)
        status = upstream.status
        prefix: bytes | None = None
        order_id = None
        if self._on_answer is not None and 200 <= status < 300 and self._intercept(method, path):
            try:
                prefix = upstream.read(self.tee_limit + 1)
            except (HTTPError, OSError) as exc:
                upstream.release_conn()
                return self._failed(exc, method, path, started, start_response)
            whole = len(prefix) <= self.tee_limit
            order_id = self._on_answer(path, status, prefix if whole else None)
        start_response(_status_line(status, upstream.reason), _response_headers(upstream))
        return _Answer(self, upstream, _Exchange(method, path, started, order_id), prefix)

    def _target(self, environ: WSGIEnviron) -> str:
        raw: str | None = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw and raw.startswith("/"):
            return self._prefix + raw
        # PATH_INFO holds the request's bytes decoded as latin-1 (PEP 3333).
        path = (environ.get("PATH_INFO", "") or "/").encode("latin-1")
        target = self._prefix + quote(path, safe="/%:@!$&'()*+,;=")
        query = environ.get("QUERY_STRING")
        return f"{target}?{query}" if query else target

    def _failed(
        self,
        exc: Exception,
        method: str,
        path: str,
        started: float,
        start_response: StartResponse,
    ) -> list[bytes]:
        reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
        # NewConnectionError derives from ConnectTimeoutError, but is a refusal.
        timed_out = isinstance(reason, TimeoutError) and not isinstance(reason, NewConnectionError)
        status, kind = (504, "timeout") if timed_out else (502, "unavailable")
        self._metrics.upstream_errors.labels(kind).inc()
        message = (
            "the upstream did not answer in time"
            if timed_out
            else f"the upstream could not be reached: {type(reason).__name__}"
        )
        body = json.dumps({"error": f"upstream_{kind}", "message": message}).encode()
        start_response(
            _status_line(status, None),
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        self._access_log.record(
            method=method,
            path=path,
            status=status,
            duration_s=time.perf_counter() - started,
            upstream=True,
            error=message,
        )
        return [body]

    def finished(self, exchange: _Exchange, status: int) -> None:
        """Report a sent answer in the access log."""
        self._access_log.record(
            method=exchange.method,
            path=exchange.path,
            status=status,
            duration_s=time.perf_counter() - exchange.started,
            order_id=exchange.order_id,
            upstream=True,
        )


@dataclass(frozen=True, slots=True)
class _Exchange:
    method: str
    path: str
    started: float
    order_id: str | None


class _Answer:
    """The response body iterable: small bodies at once, large ones streamed.

    ``prefix`` is what was read already (an intercepted answer): sent first, then the
    rest, if any, is streamed.
    """

    __slots__ = ("_complete", "_exchange", "_prefix", "_proxy", "_up")

    def __init__(
        self,
        proxy: ProxyApp,
        upstream: urllib3.BaseHTTPResponse,
        exchange: _Exchange,
        prefix: bytes | None = None,
    ) -> None:
        self._proxy = proxy
        self._up = upstream
        self._exchange = exchange
        self._prefix = prefix
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        if self._prefix is not None:
            yield self._prefix
            if len(self._prefix) <= self._proxy.tee_limit:
                self._complete = True
                return
            yield from self._stream()
            return
        length = self._up.headers.get("Content-Length")
        if self._exchange.method == "HEAD" or (
            length is not None and length.isdigit() and int(length) <= _INLINE_BODY_LIMIT
        ):
            data = self._up.read()
            self._complete = True
            yield data
            return
        yield from self._stream()

    def _stream(self) -> Iterator[bytes]:
        yield from self._up.stream(_CHUNK, decode_content=False)
        self._complete = True

    def close(self) -> None:
        """Give the connection back (or drop it when unread), then log the answer."""
        if not self._complete:
            self._up.close()
        self._up.release_conn()
        self._proxy.finished(self._exchange, self._up.status)


def _status_line(status: int, reason: str | None) -> str:
    return f"{status} {reason or _REASONS.get(status, 'Unknown')}"


def _request_headers(environ: WSGIEnviron) -> dict[str, str]:
    named = environ.get("HTTP_CONNECTION")
    dropped = (
        _DROPPED_REQUEST | {token.strip().lower() for token in named.split(",")}
        if named
        else _DROPPED_REQUEST
    )
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in _ENVIRON_HEADERS:
            if not value:
                continue
            name = _ENVIRON_HEADERS[key]
        else:
            continue
        lower = name.lower()
        if lower not in dropped and not lower.startswith("proxy-"):
            headers[name] = value
    _append(headers, "X-Forwarded-For", environ.get("REMOTE_ADDR", ""))
    _append(headers, "X-Forwarded-Proto", environ.get("wsgi.url_scheme", "http"))
    _append(headers, "X-Forwarded-Host", environ.get("HTTP_HOST") or _server_host(environ))
    # Say nothing the client did not say: urllib3 would add its own values otherwise.
    headers.setdefault("User-Agent", SKIP_HEADER)
    headers.setdefault("Accept-Encoding", SKIP_HEADER)
    return headers


def _append(headers: dict[str, str], name: str, value: str) -> None:
    if not value:
        return
    current = headers.get(name)
    headers[name] = f"{current}, {value}" if current else value


def _server_host(environ: WSGIEnviron) -> str:
    return f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}".strip(":")


def _request_body(environ: WSGIEnviron) -> bytes | IO[bytes] | LimitedStream | None:
    length = environ.get("CONTENT_LENGTH")
    stream: IO[bytes] = environ["wsgi.input"]
    if length:
        size = int(length)
        if size <= _INLINE_BODY_LIMIT:
            return stream.read(size)
        return LimitedStream(stream, size)
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and environ.get(
        "wsgi.input_terminated"
    ):
        return stream
    return None


def _response_headers(upstream: urllib3.BaseHTTPResponse) -> list[tuple[str, str]]:
    headers = upstream.headers
    named = headers.get("Connection")
    dropped = (
        _DROPPED_RESPONSE | {token.strip().lower() for token in named.split(",")}
        if named
        else _DROPPED_RESPONSE
    )
    return [
        (name, value)
        for name, value in headers.items()
        if name.lower() not in dropped and not name.lower().startswith("proxy-")
    ]
