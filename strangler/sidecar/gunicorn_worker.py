"""A gthread worker whose errors before the app (bad request line, headers) answer JSON.

gunicorn answers requests it cannot parse (request line or headers too large, a bad
``Content-Length``, an invalid method...) itself, before any app runs, with an HTML
page. This worker answers them like every other sidecar error:
``{"error": "<code>", "message": "<why>"}`` with the same status gunicorn would use.
"""

from __future__ import annotations

import json
import socket
import time
from http import HTTPStatus
from ssl import SSLError
from typing import Any

from gunicorn.http.errors import (
    ConfigurationProblem,
    ForbiddenProxyRequest,
    LimitRequestHeaders,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker

__all__ = ["WORKER_CLASS", "JsonErrorWorker", "error_answer"]

WORKER_CLASS = "strangler.sidecar.gunicorn_worker.JsonErrorWorker"
_LINGER_S = 1.0
_LINGER_BYTES = 256 * 1024
_STATUSES: tuple[tuple[type[BaseException], HTTPStatus], ...] = (
    (LimitRequestHeaders, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
    (ForbiddenProxyRequest, HTTPStatus.FORBIDDEN),
    (SSLError, HTTPStatus.FORBIDDEN),
    (UnsupportedTransferCoding, HTTPStatus.NOT_IMPLEMENTED),
    (ConfigurationProblem, HTTPStatus.INTERNAL_SERVER_ERROR),
    (ParseException, HTTPStatus.BAD_REQUEST),
)


def error_answer(exc: BaseException) -> bytes:
    """The whole HTTP/1.1 answer (status line, headers, JSON body) for ``exc``."""
    status = next(
        (status for kind, status in _STATUSES if isinstance(exc, kind)),
        HTTPStatus.INTERNAL_SERVER_ERROR,
    )
    if status is HTTPStatus.INTERNAL_SERVER_ERROR:
        message = "the sidecar failed before the app could answer; its log has the details"
    else:
        message = f"the request could not be read: {type(exc).__name__}: {exc}"[:500]
    code = status.phrase.lower().replace(" ", "_")
    body = (json.dumps({"error": code, "message": message}, sort_keys=True) + "\n").encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's gthread worker, answering its own errors in JSON (see the module)."""

    def handle_error(self, _req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Log as gunicorn does, then answer ``exc`` in JSON and let the connection close."""
        if isinstance(exc, ParseException | SSLError):
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        else:
            self.log.exception("Error handling request (before the app)")
        try:
            client.setblocking(True)
            client.sendall(error_answer(exc))
            _linger(client)
        except OSError:
            self.log.debug("Failed to send error message.")


def _linger(client: socket.socket) -> None:
    """Read what the client still sends (bounded) so closing does not reset the answer.

    Closing a socket with unread input sends a TCP reset, which can destroy the answer
    before the client reads it (a request line too long leaves most of it unread).
    At most 1 s and 256 KiB, so a slow client cannot hold the thread.
    """
    client.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + _LINGER_S
    drained = 0
    while drained < _LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
        client.settimeout(left)
        chunk = client.recv(65536)
        if not chunk:
            return
        drained += len(chunk)
