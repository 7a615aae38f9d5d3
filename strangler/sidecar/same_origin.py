"""Refuse cross-site writes from browsers to the ``/_strangler/`` API (CSRF defence in depth).

Admin writes already need the bearer token in an Authorization header, which a foreign
page cannot add without a CORS preflight the sidecar never grants. Browsers also say
where a request comes from: a write whose ``Sec-Fetch-Site`` is ``cross-site`` or
``same-site``, or whose ``Origin`` is not this host, is answered 403. Clients that send
neither header (curl, the CLI, SNS) are not browsers and are let through to the token check.
The Flask hook guards every write of the Flask app; the lean intake
(strangler.sidecar.intake_wsgi) asks :func:`cross_site_refusal` itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

from strangler.sidecar.errors import json_error

__all__ = ["CROSS_SITE_ERROR", "cross_site_refusal", "refuse_cross_site_writes"]

CROSS_SITE_ERROR = "cross_site_write"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME = frozenset({"same-origin", "none"})


def cross_site_refusal(
    method: str, *, site: str | None, origin: str | None, host: str
) -> str | None:
    """Why a request is a cross-site write (the 403 message), or None when it is not.

    ``site`` and ``origin`` are the Sec-Fetch-Site and Origin headers (None when absent),
    ``host`` the Host the request was sent to.
    """
    if method in _SAFE_METHODS:
        return None
    if site is not None and site not in _SAME:
        return _message(f"Sec-Fetch-Site is {site!r}")
    if origin is not None and urlsplit(origin).netloc != host:
        return _message(f"Origin {origin!r} is not {host!r}")
    return None


def refuse_cross_site_writes() -> Response | None:
    """A Flask before-request hook: a 403 for a cross-site write, else None."""
    why = cross_site_refusal(
        request.method,
        site=request.headers.get("Sec-Fetch-Site"),
        origin=request.headers.get("Origin"),
        host=request.host,
    )
    return None if why is None else json_error(403, CROSS_SITE_ERROR, why)


def _message(why: str) -> str:
    return (
        f"cross-site writes are refused ({why}); send writes from the dashboard on this "
        "host or from a non-browser client"
    )
