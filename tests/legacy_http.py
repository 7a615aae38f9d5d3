"""A legacy app faked below the adapter, at urllib3's connection pool: tests register
answers (or errors) per method and URL, as with ``responses``, and read the calls made.

The adapter's transport sends through ``urllib3.HTTPConnectionPool.urlopen``; while a
``LegacyHTTPMock`` is entered, that method answers from the registry instead of the
network, so everything above it (the transport's headers, retries, timeouts' messages,
the breaker, decoding) runs for real. Its own HTTP behaviour (timeouts, connection
reuse, dropped connections) is tested against a real server in
tests/unit/legacy_adapter/test_transport_http.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import urllib3
from urllib3 import HTTPHeaderDict

__all__ = ["Call", "LegacyHTTPMock", "SentRequest"]


@dataclass(frozen=True)
class SentRequest:
    """What the adapter sent: method, full URL (with its query), headers, body."""

    method: str
    url: str
    headers: HTTPHeaderDict
    body: bytes | None

    @property
    def params(self) -> dict[str, str]:
        """The query's parameters."""
        return dict(parse_qsl(urlsplit(self.url).query))


@dataclass(frozen=True)
class Call:
    """One request the mock answered, and its answer (None when it raised)."""

    request: SentRequest
    response: urllib3.HTTPResponse | None


@dataclass
class _Answer:
    method: str
    url: str | re.Pattern[str]
    status: int
    body: bytes | Exception
    headers: dict[str, str] = field(default_factory=dict)
    used: bool = False

    def matches(self, method: str, url: str) -> bool:
        if method != self.method:
            return False
        if isinstance(self.url, re.Pattern):
            return self.url.match(url) is not None
        return (url if "?" in self.url else url.split("?", 1)[0]) == self.url


class LegacyHTTPMock:
    """Answers the adapter's requests from what the test registers; an unregistered
    request fails the test. Several answers for one method and URL are given in turn,
    the last one repeating."""

    GET = "GET"
    POST = "POST"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._answers: list[_Answer] = []
        self._patch = mock.patch.object(
            urllib3.HTTPConnectionPool, "urlopen", autospec=True, side_effect=self._urlopen
        )

    def __enter__(self) -> LegacyHTTPMock:
        self._patch.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._patch.stop()

    def add(
        self,
        method: str,
        url: str | re.Pattern[str],
        *,
        json: Any = None,
        body: str | bytes | Exception = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Answer ``method url`` with ``json`` (or ``body``; an exception is raised)."""
        self._answers.append(_answer(method, url, json, body, status, headers, content_type))

    def get(self, url: str | re.Pattern[str], **answer: Any) -> None:
        """Answer ``GET url``."""
        self.add("GET", url, **answer)

    def post(self, url: str | re.Pattern[str], **answer: Any) -> None:
        """Answer ``POST url``."""
        self.add("POST", url, **answer)

    def replace(self, method: str, url: str | re.Pattern[str], **answer: Any) -> None:
        """Answer ``method url`` from now on with this instead of what was registered."""
        self._answers = [a for a in self._answers if (a.method, a.url) != (method, url)]
        self.add(method, url, **answer)

    def _urlopen(
        self,
        pool: urllib3.HTTPConnectionPool,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **_options: Any,
    ) -> urllib3.HTTPResponse:
        if not urlsplit(url).scheme:
            port = f":{pool.port}" if pool.port not in (None, 80, 443) else ""
            url = f"{pool.scheme}://{pool.host}{port}{url}"
        request = SentRequest(method, url, HTTPHeaderDict(headers or {}), body)
        matching = [answer for answer in self._answers if answer.matches(method, url)]
        if not matching:
            self.calls.append(Call(request, None))
            raise AssertionError(f"no answer registered for {method} {url}")
        answer = next((a for a in matching if not a.used), matching[-1])
        answer.used = True
        if isinstance(answer.body, Exception):
            self.calls.append(Call(request, None))
            raise answer.body
        response = urllib3.HTTPResponse(
            body=answer.body,
            headers=HTTPHeaderDict(answer.headers),
            status=answer.status,
            request_method=method,
            request_url=url,
        )
        self.calls.append(Call(request, response))
        return response


def _answer(
    method: str,
    url: str | re.Pattern[str],
    data: Any,
    body: str | bytes | Exception,
    status: int,
    headers: dict[str, str] | None,
    content_type: str | None,
) -> _Answer:
    if data is not None:
        body, content_type = json.dumps(data), content_type or "application/json"
    if isinstance(body, str):
        body = body.encode("utf-8")
    all_headers = {"Content-Type": content_type or "text/plain", **(headers or {})}
    return _Answer(method, url, status, body, all_headers)
