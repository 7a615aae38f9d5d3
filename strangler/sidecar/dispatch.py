"""The outermost WSGI callable: the sidecar's own paths to Flask, everything else to the proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["OWN_PREFIX", "SidecarDispatch", "is_own_path"]

OWN_PREFIX = "/_strangler"
_METRICS = "/metrics"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_own_path(path: str) -> bool:
    """True for ``/_strangler``, anything under ``/_strangler/``, and ``/metrics``."""
    return path in (_METRICS, OWN_PREFIX) or path.startswith(OWN_PREFIX + "/")


class SidecarDispatch:
    """Sends each request to ``own`` (Flask) or ``proxy`` by its path; nothing else."""

    __slots__ = ("own", "proxy")

    def __init__(self, own: WSGIApp, proxy: WSGIApp) -> None:
        self.own = own
        self.proxy = proxy

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if is_own_path(environ.get("PATH_INFO", "")):
            return self.own(environ, start_response)
        return self.proxy(environ, start_response)
