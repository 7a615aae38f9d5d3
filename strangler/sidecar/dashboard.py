"""``GET /_strangler/``: the ops dashboard (rollout, figures, controls) and the API list.

The page is server-rendered, self-contained (``static/dashboard.js`` and ``.css`` are
inlined under a per-response CSP nonce); the script polls ``/_strangler/rollout`` and
``/_strangler/report`` for the figures and drives the controls through ``PUT
/_strangler/rollout``. The admin token lives in the tab's sessionStorage and is sent only
in an Authorization header, so the page itself holds nothing an admin needs; cross-site
writes are refused by :mod:`strangler.sidecar.same_origin`.
"""

from __future__ import annotations

import secrets
from functools import cache
from importlib import resources

from flask import Blueprint, Response, render_template
from markupsafe import Markup

from strangler import __version__
from strangler.sidecar.same_origin import refuse_cross_site_writes
from strangler.sidecar.state import sidecar_state

__all__ = ["ENDPOINTS", "REFRESH_MS", "blueprint"]

blueprint = Blueprint("dashboard", __name__, template_folder="templates")
blueprint.before_app_request(refuse_cross_site_writes)

REFRESH_MS = 3000
ENDPOINTS = (
    ("GET", "/_strangler/healthz", "the process is up"),
    ("GET", "/_strangler/readyz", "ledger answers, flag loaded, upstream reachable"),
    ("GET", "/_strangler/decide?order_id=&user_guid=&unit_id=", "what the flag says now"),
    ("GET", "/_strangler/orders/<order_id>", "the ledger's story of one order"),
    ("POST", "/_strangler/notifications", "take an order notification in (token)"),
    ("POST", "/_strangler/sns", "Amazon SNS subscription endpoint (signed messages)"),
    ("GET, PUT", "/_strangler/rollout", "show or change the rollout (token)"),
    ("GET", "/_strangler/report", "the comparison report as JSON"),
    ("GET", "/metrics", "Prometheus metrics"),
)


@blueprint.get("/_strangler/")
def index() -> Response:
    """The dashboard page; figures and controls are filled in by its script."""
    state = sidecar_state()
    report = state.readiness.report()
    nonce = secrets.token_urlsafe(16)
    page = render_template(
        "dashboard.html",
        version=__version__,
        flag=state.settings.flag_name,
        upstream=state.settings.upstream_url,
        ready=report.ready,
        checks=report.checks,
        endpoints=ENDPOINTS,
        refresh_ms=REFRESH_MS,
        nonce=nonce,
        script=_asset("dashboard.js"),
        style=_asset("dashboard.css"),
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


@cache
def _asset(name: str) -> Markup:
    """A file of ``static/``, read once, trusted as-is (it ships with the package)."""
    text = resources.files("strangler.sidecar").joinpath("static", name).read_text("utf-8")
    return Markup(text)  # noqa: S704 (our own packaged file, not user input)
