"""The outermost WSGI callable: the sidecar's own paths to Flask, everything else to the proxy.

A few hot ``(method, path)`` pairs of the sidecar's own API (the notification intake)
go to lean WSGI callables instead of Flask; the Flask app keeps their routes for every
other method (405) and for the API document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["OWN_PREFIX", "SidecarDispatch", "is_own_path"]

OWN_PREFIX = "/_strangler"
_METRICS = "/metrics"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
        if not is_own_path(path):
            return self.proxy(environ, start_response)
        lean = self.lean.get((environ.get("REQUEST_METHOD", ""), path))
        if lean is not None:
            return lean(environ, start_response)
        return self.own(environ, start_response)
