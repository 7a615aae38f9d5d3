"""``GET /_strangler/``: a read-only status page listing the API (the dashboard comes later)."""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response

from strangler import __version__
from strangler.sidecar.state import sidecar_state

__all__ = ["ENDPOINTS", "blueprint"]

blueprint = Blueprint("dashboard", __name__)

ENDPOINTS = (
    ("GET", "/_strangler/healthz", "the process is up"),
    ("GET", "/_strangler/readyz", "ledger writable, flag loaded, upstream reachable"),
    ("GET", "/_strangler/decide?order_id=&user_guid=&unit_id=", "what the flag says now"),
    ("GET", "/_strangler/orders/<order_id>", "the ledger's story of one order"),
    ("POST", "/_strangler/notifications", "take an order notification in (token)"),
    ("POST", "/_strangler/sns", "Amazon SNS subscription endpoint (signed messages)"),
    ("GET, PUT", "/_strangler/rollout", "show or change the rollout (token)"),
    ("GET", "/metrics", "Prometheus metrics"),
)


@blueprint.get("/_strangler/")
def index() -> Response:
    """The status page: upstream, readiness and the list of endpoints."""
    state = sidecar_state()
    report = state.readiness.report()
    checks = "".join(
        f"<li>{escape(name)}: {escape(verdict)}</li>" for name, verdict in report.checks.items()
    )
    rows = "".join(
        f"<tr><td>{escape(m)}</td><td><code>{escape(p)}</code></td><td>{escape(w)}</td></tr>"
        for m, p, w in ENDPOINTS
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>strangler sidecar</title></head>
<body>
<h1>strangler sidecar {escape(__version__)}</h1>
<p>Proxying to <code>{escape(state.settings.upstream_url)}</code>;
ready: <strong>{"yes" if report.ready else "no"}</strong></p>
<ul>{checks}</ul>
<table><thead><tr><th>method</th><th>path</th><th>what</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""
    return Response(page, content_type="text/html; charset=utf-8")
