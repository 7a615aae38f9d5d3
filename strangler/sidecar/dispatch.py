"""The outermost WSGI callable: the sidecar's own paths to Flask, everything else to the proxy.

A few hot ``(method, path)`` pairs of the sidecar's own API (the notification intake)
go to lean WSGI callables instead of Flask; the Flask app keeps their routes for every
other method (405) and for the API document. Every answer, proxied ones included,
carries ``X-Content-Type-Options: nosniff`` (an upstream's own value is replaced, not
doubled), so no browser guesses a JSON or text answer to be HTML or script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["NOSNIFF", "OWN_PREFIX", "SidecarDispatch", "is_own_path", "with_nosniff"]

OWN_PREFIX = "/_strangler"
NOSNIFF = ("X-Content-Type-Options", "nosniff")
_METRICS = "/metrics"
_NOSNIFF_NAME = NOSNIFF[0].lower()
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_nosniff(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """``start_response`` adding ``X-Content-Type-Options: nosniff`` (replacing any other)."""

    def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        kept = [header for header in headers if header[0].lower() != _NOSNIFF_NAME]
        kept.append(NOSNIFF)
        return start_response(status, kept, *exc_info)

    return start


def is_own_path(path: str) -> bool:
    """True for ``/_strangler``, anything under ``/_strangler/``, and ``/metrics``."""
    return path in (_METRICS, OWN_PREFIX) or path.startswith(OWN_PREFIX + "/")


class SidecarDispatch:
    """Sends each request to ``own`` (Flask), a ``lean`` callable, or ``proxy``, by its path.

    ``lean`` maps ``(method, path)`` of the sidecar's own API to the callable answering it.
    """

    __slots__ = ("lean", "own", "proxy")

    def __init__(
        self,
        own: WSGIApp,
        proxy: WSGIApp,
        *,
        lean: Mapping[tuple[str, str], WSGIApp] | None = None,
    ) -> None:
        self.own = own
        self.proxy = proxy
        self.lean = dict(lean or {})

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        start_response = with_nosniff(start_response)
        if not is_own_path(path):
            return self.proxy(environ, start_response)
        lean = self.lean.get((environ.get("REQUEST_METHOD", ""), path))
        if lean is not None:
            return lean(environ, start_response)
        return self.own(environ, start_response)
