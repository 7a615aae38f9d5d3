"""HTTP to the legacy app: one pooled session, timeouts, bounded retries, the breaker.

This is the one place where ``requests`` errors are translated into the adapter's own
(``raise ... from exc``); nothing above it sees a ``requests`` exception.

With the transport's own session, each call is a ``PreparedRequest`` built here from
headers, URL and send options settled once (``Session.send``), rather than
``Session.request``, which merges the session's settings into every call (about a third
of requests' CPU per call, measured: see docs/BENCHMARKS.md, head_of_line). A session
passed in is used as ``requests`` uses it, its settings merged on every call.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import structlog
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from strangler.backoff import Backoff
from strangler.legacy_adapter.breaker import CircuitBreaker
from strangler.legacy_adapter.exceptions import (
    LegacyError,
    LegacyProtocolError,
    LegacyRejected,
    LegacyUnavailable,
)

__all__ = ["ORDER_SCOPED_ERRORS", "Answer", "BearerAuth", "Transport"]

_log = structlog.get_logger()
_MAX_BACKOFF_S = 2.0
# 5xx error codes with which the app says that one order's own dependency failed (the
# payment gateway for that card): the app answered, so they do not count against it in
# the circuit breaker, or a gateway failing for some cards would stop every order.
ORDER_SCOPED_ERRORS = frozenset({"payment_gateway_error"})


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``; the token stays out of ``repr``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token=<hidden>)"


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
        auth: requests.auth.AuthBase | None,
        session: requests.Session | None,
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
        self._auth = auth
        self._owns_session = session is None
        self._session = session or _pooled_session(base_url, pool_size)
        self._timeout = (connect_timeout, read_timeout)
        self._prepared = _Prepared(self._session, base_url) if session is None else None
        self._retries = retries
        self._backoff_policy = Backoff(backoff_s, _MAX_BACKOFF_S, jitter=(0.5, 1.0))
        self._sleep = sleep

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session:
            self._session.close()

    @property
    def silent_attempt_s(self) -> float:
        """The longest one attempt waits on a silent legacy app: connect plus read timeout."""
        return self._timeout[0] + self._timeout[1]

    def single_attempt(self) -> Transport:
        """A transport sharing this one's session and breaker that never retries a call."""
        view = copy.copy(self)
        view._retries = 0
        view._owns_session = False
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
        failure: LegacyUnavailable | None = None
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(self._backoff(attempt - 1))
            try:
                response = self._send(request)
            except requests.RequestException as exc:
                failure = LegacyUnavailable(
                    f"legacy app unavailable: {what}: {_describe(exc, self._timeout)}",
                    attempts=attempt,
                )
                failure.__cause__ = exc
            else:
                if response.status_code < 500:
                    return _decode(what, response)
                code = _error_code(response)
                failure = LegacyUnavailable(
                    f"legacy app unavailable: {what}: HTTP {response.status_code}"
                    f"{f' ({code})' if code else ''}",
                    status=response.status_code,
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

    def _send(self, request: _Request) -> requests.Response:
        """One HTTP request: prepared here with the transport's own session, else by
        ``requests`` with the session passed in (its headers, cookies and hooks merged)."""
        if self._prepared is not None:
            prepared = self._prepared.request(request, self._auth)
            return self._session.send(prepared, timeout=self._timeout, **self._prepared.options)
        headers = {"Accept": "application/json"}
        if request.idempotency_key is not None:
            headers["Idempotency-Key"] = request.idempotency_key
        return self._session.request(
            request.method,
            self.base_url + request.path,
            params=request.params,
            json=request.body,
            headers=headers,
            auth=self._auth,
            timeout=self._timeout,
            allow_redirects=False,
        )

    def _backoff(self, retry_number: int) -> float:
        """Exponential backoff with jitter: about backoff_s, 2x, 4x ... capped at 2 s."""
        return self._backoff_policy.delay_s(retry_number)


def _pooled_session(base_url: str, pool_size: int) -> requests.Session:
    """A session for one app. Proxy variables (HTTP_PROXY, NO_PROXY...) are read once here
    rather than on every call, which costs about half a millisecond per call; ~/.netrc is
    not consulted (credentials come from settings only)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _Prepared:
    """Builds the transport's requests for its own session, whose settings (headers,
    proxies, TLS verification) are fixed when it is made: merged here once, not per call."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        # requests' own URL checks and normalisation, once for the base; the paths are
        # quoted by the client and the query encoded as requests encodes it.
        base = requests.PreparedRequest()
        base.prepare_url(base_url, None)
        assert base.url is not None
        self._base = base.url.rstrip("/")
        # The session's own headers are requests' defaults (it is never given others).
        self._headers = {**requests.utils.default_headers(), "Accept": "application/json"}
        self._cookies = session.cookies
        self.options: dict[str, Any] = {
            "allow_redirects": False,
            "stream": False,
            "verify": session.verify,
            "cert": session.cert,
            "proxies": dict(session.proxies),
        }

    def request(
        self, request: _Request, auth: requests.auth.AuthBase | None
    ) -> requests.PreparedRequest:
        """``request`` as requests would prepare it from ``Session.request``."""
        headers = CaseInsensitiveDict(self._headers)
        if request.idempotency_key is not None:
            headers["Idempotency-Key"] = request.idempotency_key
        body = None
        if request.body is not None:
            body = json.dumps(request.body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(body))
        elif request.method not in ("GET", "HEAD"):
            headers["Content-Length"] = "0"
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url = self._base + request.path
        if request.params:
            prepared.url += "?" + urlencode(request.params)
        prepared.headers = headers
        prepared.body = body
        # Cookies the app set on this session go back to it, as with Session.request.
        prepared.prepare_cookies(self._cookies)
        return auth(prepared) if auth is not None else prepared


def _decode(what: str, response: requests.Response) -> Answer:
    if 300 <= response.status_code < 400:
        raise LegacyProtocolError(
            f"legacy app answered {what} with a redirect (HTTP {response.status_code}); "
            "check the legacy URL"
        )
    try:
        body = response.json()
    except ValueError as exc:
        if response.status_code >= 400:
            return Answer(response.status_code, response.text[:500])
        raise LegacyProtocolError(
            f"legacy app answered {what} with HTTP {response.status_code} "
            f"and a body that is not JSON: {response.text[:200]!r}"
        ) from exc
    return Answer(response.status_code, body)


def _error_code(response: requests.Response) -> str | None:
    """The app's own error code (``{"error": "..."}``), or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def _describe(exc: requests.RequestException, timeout: tuple[float, float]) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout[0]}s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {timeout[1]}s"
    if isinstance(exc, requests.ConnectionError):
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
