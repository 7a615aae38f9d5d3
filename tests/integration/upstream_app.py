"""A tiny order-service stand-in for the sidecar's proxy tests: a raw WSGI app.

Run under gunicorn (gthread) as a real process. Every answer says what arrived, so a
test can compare what it sent through the sidecar with what the upstream saw.

- ``/echo/...``: JSON of method, raw path, query, headers, body length and sha256;
  the client's port shows which pooled connection carried the request.
- ``/bytes/<n>``: ``n`` deterministic bytes with Content-Length;
  ``/chunked/<n>``: the same without Content-Length (chunked on HTTP/1.1).
- ``/status/<code>``: that status with two Set-Cookie headers and hop-by-hop headers.
- ``/slow/<ms>``: answers after ``ms`` milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

StartResponse = Callable[..., Any]
_BLOCK = 64 * 1024


def payload(size: int) -> Iterator[bytes]:
    """``size`` deterministic bytes in blocks (the same bytes every time)."""
    pattern = bytes(range(256)) * (_BLOCK // 256)
    sent = 0
    while sent < size:
        block = pattern[: min(_BLOCK, size - sent)]
        sent += len(block)
        yield block


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Route by the first path segment."""
    path: str = environ.get("PATH_INFO", "")
    kind, _, arg = path.strip("/").partition("/")
    if kind == "bytes":
        size = int(arg)
        start_response("200 OK", [("Content-Length", str(size))])
        return payload(size)
    if kind == "chunked":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return payload(int(arg))
    if kind == "status":
        return _status(int(arg), start_response)
    if kind == "slow":
        time.sleep(int(arg) / 1000)
    return _echo(environ, start_response)


def _echo(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    length = 0
    while block := stream.read(_BLOCK):
        digest.update(block)
        length += len(block)
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    body = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "raw_uri": environ.get("RAW_URI"),
            "query": environ.get("QUERY_STRING", ""),
            "headers": headers,
            "body_length": length,
            "body_sha256": digest.hexdigest(),
            "client_port": environ.get("REMOTE_PORT"),
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _status(code: int, start_response: StartResponse) -> list[bytes]:
    body = b"" if code in (204, 304) else json.dumps({"status": code}).encode()
    headers = [
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Path=/"),
        ("X-Upstream", "yes"),
        ("Content-Length", str(len(body))),
    ]
    if code in (301, 302, 307):
        headers.append(("Location", "/echo/moved"))
    start_response(f"{code} {HTTPStatus(code).phrase}", headers)
    return [body]
