"""HTTP to the legacy app: one urllib3 connection pool, timeouts, bounded retries, the breaker.

This is the one place where HTTP errors are translated into the adapter's own
(``raise ... from exc``); nothing above it sees a ``urllib3`` exception.

Each call goes straight to urllib3's pool (``urlopen``), with headers, URL prefix and
timeouts settled once: ``requests`` added a Session, a prepared request, an adapter, a
Response and cookie bookkeeping to every call, about a third of a call's CPU in the
routing process (measured: docs/BENCHMARKS.md, head_of_line).
"""

from __future__ import annotations

import copy
import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from strangler.backoff import Backoff
from strangler.legacy_adapter.breaker import CircuitBreaker
from strangler.legacy_adapter.exceptions import (
    LegacyError,
    LegacyProtocolError,
    LegacyRejected,
    LegacyUnavailable,
)

__all__ = ["ORDER_SCOPED_ERRORS", "Answer", "Credentials", "Transport"]

_log = structlog.get_logger()
_MAX_BACKOFF_S = 2.0
# 5xx error codes with which the app says that one order's own dependency failed (the
# payment gateway for that card): the app answered, so they do not count against it in
# the circuit breaker, or a gateway failing for some cards would stop every order.
ORDER_SCOPED_ERRORS = frozenset({"payment_gateway_error"})
# As requests sent them, but for the User-Agent.
_HEADERS = {
    "User-Agent": "strangler-legacy-adapter",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "application/json",
    "Connection": "keep-alive",
}


class Credentials:
    """The ``Authorization`` header's value; it stays out of ``repr``."""

    __slots__ = ("_header",)

    def __init__(self, header: str) -> None:
        self._header = header

    @classmethod
    def bearer(cls, token: str) -> Credentials:
        """``Authorization: Bearer <token>``."""
        return cls(f"Bearer {token}")

    @classmethod
    def basic(cls, user: str, password: str) -> Credentials:
        """``Authorization: Basic ...`` (latin-1, as browsers and requests encode it)."""
        header = urllib3.util.make_headers(basic_auth=f"{user}:{password}")["authorization"]
        return cls(header)

    @property
    def header(self) -> str:
        """The header's value."""
        return self._header

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: Mapping[str, str] | None
    body: Mapping[str, Any] | None
    idempotency_key: str | None
    retry: bool
    order_id: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """A decoded answer below 500: its status and JSON body."""

    status: int
    body: Any

    def raise_for_rejection(self, what: str) -> None:
        """Raise LegacyRejected for a 4xx answer; ``what`` names the call for the message."""
        if self.status < 400:
            return
        message = self.body.get("message") if isinstance(self.body, dict) else None
        raise LegacyRejected(
            f"legacy app rejected {what}: HTTP {self.status}: {message or self.body!r}",
            status=self.status,
            body=self.body,
        )


class Transport:
    """Sends one logical call, retrying idempotent ones on unavailability.

    The breaker hears one outcome per logical call, after its retries: a call that
    succeeded on a retry shows the app is alive. 4xx answers count as successes (the app
    answered); unavailability and answers that are not JSON count as failures.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        backoff_s: float,
        breaker: CircuitBreaker,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError(
                f"timeouts must be positive, got connect={connect_timeout} read={read_timeout}"
            )
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be 0 or more, got {backoff_s}")
        self.base_url = base_url
        self.breaker = breaker
        self._timeouts = (connect_timeout, read_timeout)
        timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._pool = _Pool(base_url, timeout, pool_size)
        self._headers = dict(_HEADERS)
        if credentials is not None:
            self._headers["Authorization"] = credentials.header
        self._owns_pool = True
        self._retries = retries
        self._backoff_policy = Backoff(backoff_s, _MAX_BACKOFF_S, jitter=(0.5, 1.0))
        self._sleep = sleep

    def close(self) -> None:
        """Close the pooled connections, unless this is a view of another transport."""
        if self._owns_pool:
            self._pool.close()

    @property
    def silent_attempt_s(self) -> float:
        """The longest one attempt waits on a silent legacy app: connect plus read timeout."""
        return self._timeouts[0] + self._timeouts[1]

    def single_attempt(self) -> Transport:
        """A transport sharing this one's pool and breaker that never retries a call."""
        view = copy.copy(self)
        view._retries = 0
        view._owns_pool = False
        return view

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        retry: bool,
        order_id: str | None = None,
    ) -> Answer:
        """Send ``method path``; raises LegacyUnavailable, LegacyProtocolError or CircuitOpen.

        4xx answers are returned, not raised: the caller knows what each means.
        """
        request = _Request(method, path, params, body, idempotency_key, retry, order_id)
        self.breaker.before_call()
        try:
            answer = self._attempts(request)
        except LegacyUnavailable as exc:
            if exc.code in ORDER_SCOPED_ERRORS:
                self.breaker.record_success()  # the app answered: it is up
            else:
                self.breaker.record_failure()
            raise
        except LegacyError:
            self.breaker.record_failure()
            raise
        except BaseException:
            # Not the app's fault (a bug in the body, an interrupt): no verdict either way.
            self.breaker.record_abandoned()
            raise
        self.breaker.record_success()
        return answer

    def _attempts(self, request: _Request) -> Answer:
        what = f"{request.method} {request.path}"
        attempts = 1 + (self._retries if request.retry else 0)
        url = request.path
        if request.params:
            url += "?" + urlencode(request.params)
        headers = dict(self._headers)
        if request.idempotency_key is not None:
            headers["Idempotency-Key"] = request.idempotency_key
        body = None
        if request.body is not None:
            body = json.dumps(request.body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        failure: LegacyUnavailable | None = None
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(self._backoff(attempt - 1))
            try:
                response = self._pool.send(request.method, url, body, headers)
            except HTTPError as exc:
                failure = LegacyUnavailable(
                    f"legacy app unavailable: {what}: {_describe(exc, self._timeouts)}",
                    attempts=attempt,
                )
                failure.__cause__ = exc
            else:
                if response.status < 500:
                    return _decode(what, response)
                code = _error_code(response)
                failure = LegacyUnavailable(
                    f"legacy app unavailable: {what}: HTTP {response.status}"
                    f"{f' ({code})' if code else ''}",
                    status=response.status,
                    attempts=attempt,
                    code=code,
                )
            if attempt < attempts:
                _log.warning(
                    "legacy_call_retry",
                    call=what,
                    order_id=request.order_id,
                    attempt=attempt,
                    error=str(failure),
                )
        assert failure is not None
        _log.warning(
            "legacy_call_failed",
            call=what,
            order_id=request.order_id,
            attempts=attempts,
            error=str(failure),
        )
        raise failure

    def _backoff(self, retry_number: int) -> float:
        """Exponential backoff with jitter: about backoff_s, 2x, 4x ... capped at 2 s."""
        return self._backoff_policy.delay_s(retry_number)


class _Pool:
    """The connections to one app: keep-alive, at most ``size`` kept, none retried by
    urllib3 (the transport retries), redirects returned, not followed; cookies the app
    sets (a load balancer's affinity, say) go back to it."""

    def __init__(self, base_url: str, timeout: urllib3.Timeout, size: int) -> None:
        parts = urlsplit(base_url)
        options: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": size,
            "timeout": timeout,
            "retries": False,
        }
        if parts.scheme == "https":
            # The CA bundle requests verified with (certifi's), not the system's.
            import certifi  # noqa: PLC0415

            options["ca_certs"] = certifi.where()
        proxy = _environment_proxy(base_url, parts.scheme)
        self._manager: urllib3.PoolManager
        self._target: urllib3.PoolManager | urllib3.HTTPConnectionPool
        if proxy is None:
            self._manager = urllib3.PoolManager(**options)
            # Straight to the host's pool, with its path: no per-call URL parsing.
            self._target = self._manager.connection_from_url(base_url)
            self._prefix = parts.path
        else:
            self._manager = self._target = urllib3.ProxyManager(proxy, **options)
            self._prefix = base_url
        self._base_url = base_url
        self._timeout = timeout
        self._cookies = CookieJar()

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """One HTTP exchange, the answer read whole; raises urllib3's HTTPError."""
        if len(self._cookies):
            headers = self._with_cookies(url, headers)
        response = self._target.urlopen(
            method,
            self._prefix + url,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            timeout=self._timeout,
        )
        if "Set-Cookie" in response.headers:
            self._keep_cookies(url, response)
        return response

    def close(self) -> None:
        """Close the kept connections; a later call opens a new one (as with requests)."""
        self._manager.clear()
        if not isinstance(self._target, urllib3.PoolManager):
            self._target = self._manager.connection_from_url(self._base_url)

    def _with_cookies(self, url: str, headers: dict[str, str]) -> dict[str, str]:
        # A request for the cookie jar only (nothing is opened): the base is http(s).
        request = urllib.request.Request(self._base_url + url)  # noqa: S310
        self._cookies.add_cookie_header(request)
        cookie = request.get_header("Cookie")
        return {**headers, "Cookie": cookie} if cookie else headers

    def _keep_cookies(self, url: str, response: urllib3.BaseHTTPResponse) -> None:
        request = urllib.request.Request(self._base_url + url)  # noqa: S310
        self._cookies.extract_cookies(_CookieSource(response.headers), request)  # type: ignore[arg-type]


class _CookieSource:
    """An answer's headers as http.cookiejar reads them (``info().get_all``)."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def info(self) -> _CookieSource:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        return list(self._headers.getlist(name)) or default


def _environment_proxy(base_url: str, scheme: str) -> str | None:
    """The proxy the environment (HTTP_PROXY, NO_PROXY...) names for the app, read once."""
    from requests.utils import get_environ_proxies  # noqa: PLC0415

    return get_environ_proxies(base_url).get(scheme)


def _decode(what: str, response: urllib3.BaseHTTPResponse) -> Answer:
    if 300 <= response.status < 400:
        raise LegacyProtocolError(
            f"legacy app answered {what} with a redirect (HTTP {response.status}); "
            "check the legacy URL"
        )
    try:
        body = json.loads(response.data)
    except ValueError as exc:
        text = response.data.decode("utf-8", "replace")
        if response.status >= 400:
            return Answer(response.status, text[:500])
        raise LegacyProtocolError(
            f"legacy app answered {what} with HTTP {response.status} "
            f"and a body that is not JSON: {text[:200]!r}"
        ) from exc
    return Answer(response.status, body)


def _error_code(response: urllib3.BaseHTTPResponse) -> str | None:
    """The app's own error code (``{"error": "..."}``), or None."""
    try:
        body = json.loads(response.data)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def _describe(exc: HTTPError, timeouts: tuple[float, float]) -> str:
    if isinstance(exc, NewConnectionError):
        return f"connection failed ({_root_cause(exc)})"
    if isinstance(exc, ConnectTimeoutError):
        return f"no connection within {timeouts[0]}s"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer within {timeouts[1]}s"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"connection failed ({_root_cause(exc)})"
    return f"{type(exc).__name__} ({_root_cause(exc)})"


def _root_cause(exc: BaseException) -> str:
    cause = exc
    while (deeper := cause.__cause__ or cause.__context__) is not None:
        cause = deeper
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return f"{type(cause).__name__}: {cause}"[:200]


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``http://user:pw@host`` -> (``http://host``, (user, pw)); checks the URL's shape."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"legacy URL must look like http://host:port, got {parts.scheme}://{parts.hostname}"
        )
    credentials = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        credentials = (user, password)
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    return base, credentials
