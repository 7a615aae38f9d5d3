"""``POST /_strangler/notifications`` as a lean WSGI callable, with no Flask on the way.

The intake is the sidecar's hot write path: Flask's request and response objects, its
context and its hooks cost more CPU than the ledger write itself. This callable gives
the same answers as the Flask route in :mod:`strangler.sidecar.intake` (403 for a
cross-site write as :mod:`strangler.sidecar.same_origin` says, the bearer token, 413
over the size limit, 400 naming the fields with the body kept, 503 when the ledger is
down, 202/200 once the order is durable) and writes the same access-log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import structlog
from werkzeug.wsgi import get_host

from strangler.exceptions import LedgerError
from strangler.orders import OrderNotification
from strangler.sidecar.intake import (
    MAX_NOTIFICATION_BYTES,
    SOURCE,
    IntakeAnswer,
    accept_notification,
    parse_or_reject,
)
from strangler.sidecar.same_origin import CROSS_SITE_ERROR, cross_site_refusal
from strangler.sidecar.state import SidecarState

__all__ = ["NotificationEndpoint"]

_log = structlog.get_logger()
_JSON = ("Content-Type", "application/json")
_CRASHED = "the sidecar failed while taking the notification in; its log has the details"
_Headers = tuple[tuple[str, str], ...]


class NotificationEndpoint:
    """The WSGI app answering ``POST /_strangler/notifications`` for one sidecar state."""

    def __init__(self, state: SidecarState, *, limit: int = MAX_NOTIFICATION_BYTES) -> None:
        self._state = state
        self._limit = limit

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        answer, order_id, headers = self._answer(environ)
        body = _json_bytes(answer.body)
        status = HTTPStatus(answer.status)
        start_response(
            f"{status.value} {status.phrase}",
            [_JSON, ("Content-Length", str(len(body))), *headers],
        )
        self._state.access_log.record(
            method="POST",
            path=environ.get("PATH_INFO", ""),
            status=answer.status,
            duration_s=time.perf_counter() - started,
            order_id=order_id,
        )
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[IntakeAnswer, str | None, _Headers]:
        refused = self._refusal(environ)
        if refused is not None:
            return refused[0], None, refused[1]
        raw = _read_body(environ, self._limit)
        if isinstance(raw, IntakeAnswer):
            return raw, None, ()
        order_id = None
        try:
            parsed = parse_or_reject(self._state, raw, source=SOURCE)
            if not isinstance(parsed, OrderNotification):
                return parsed, None, ()
            order_id = parsed.order_id
            return accept_notification(self._state, parsed, source=SOURCE), order_id, ()
        except LedgerError as exc:
            return _error(503, "ledger_unavailable", f"{exc}; try again shortly"), order_id, ()
        except Exception:  # answered in JSON like every /_strangler/ error, and logged
            _log.exception("intake_failed", order_id=order_id)
            return _error(500, "internal_server_error", _CRASHED), order_id, ()

    def _refusal(self, environ: dict[str, Any]) -> tuple[IntakeAnswer, _Headers] | None:
        """A cross-site write (403), or no valid token (401/503): the answer; else None."""
        cross_site = cross_site_refusal(
            "POST",
            site=environ.get("HTTP_SEC_FETCH_SITE"),
            origin=environ.get("HTTP_ORIGIN"),
            host=_host(environ),
        )
        if cross_site is not None:
            return _error(403, CROSS_SITE_ERROR, cross_site), ()
        refused = self._state.admin_token.check(environ.get("HTTP_AUTHORIZATION"))
        if refused is not None:
            return _error(refused.status, refused.error, refused.message), refused.headers
        return None


def _host(environ: dict[str, Any]) -> str:
    """The Host the request was sent to, as werkzeug reads it (Flask's ``request.host``)."""
    return str(get_host(environ))


def _read_body(environ: dict[str, Any], limit: int) -> bytes | IntakeAnswer:
    """The body, at most ``limit`` bytes, or the 413 answer (as werkzeug reads it)."""
    length = _content_length(environ)
    if length is not None and length > limit:
        return _too_large(f"the body is {length} bytes; the limit is {limit} bytes")
    stream = environ["wsgi.input"]
    if length is not None:
        data: bytes = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        data = stream.read(limit + 1)
    else:
        # No length and a stream that may not end: werkzeug reads nothing either.
        data = b""
    if len(data) > limit:
        return _too_large(f"the body is over the limit of {limit} bytes")
    return data


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return max(0, length)


def _too_large(message: str) -> IntakeAnswer:
    return _error(413, "request_entity_too_large", message)


def _error(status: int, error: str, message: str) -> IntakeAnswer:
    return IntakeAnswer(status, {"error": error, "message": message})


def _json_bytes(body: dict[str, Any]) -> bytes:
    # What Flask's jsonify writes: sorted keys, compact, ASCII, a final newline.
    return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()
