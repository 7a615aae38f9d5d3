"""Refuse cross-site writes from browsers to the ``/_strangler/`` API (CSRF defence in depth).

Admin writes already need the bearer token in an Authorization header, which a foreign
page cannot add without a CORS preflight the sidecar never grants. Browsers also say
where a request comes from: a write whose ``Sec-Fetch-Site`` is ``cross-site`` or
``same-site``, or whose ``Origin`` is not this host, is answered 403. Clients that send
neither header (curl, the CLI, SNS) are not browsers and are let through to the token check.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

from strangler.sidecar.errors import json_error

__all__ = ["refuse_cross_site_writes"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME = frozenset({"same-origin", "none"})


def refuse_cross_site_writes() -> Response | None:
    """A Flask before-request hook: a 403 for a cross-site write, else None."""
    if request.method in _SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in _SAME:
        return _refused(f"Sec-Fetch-Site is {site!r}")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return _refused(f"Origin {origin!r} is not {request.host!r}")
    return None


def _refused(why: str) -> Response:
    return json_error(
        403,
        "cross_site_write",
        f"cross-site writes are refused ({why}); send admin writes from the dashboard "
        "on this host or from a non-browser client",
    )
