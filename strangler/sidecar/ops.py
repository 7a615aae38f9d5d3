"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from strangler.sidecar.metrics import CONTENT_TYPE
from strangler.sidecar.state import sidecar_state

__all__ = ["blueprint"]

blueprint = Blueprint("ops", __name__)


@blueprint.get("/_strangler/healthz")
def healthz() -> Response:
    """200 while the process serves requests."""
    return jsonify({"status": "ok"})


@blueprint.get("/_strangler/readyz")
def readyz() -> Response:
    """200 when the ledger answers, the flag is loaded and the upstream reachable; else 503."""
    report = sidecar_state().readiness.report()
    response = jsonify({"ready": report.ready, "checks": report.checks, "routing": report.routing})
    response.status_code = 200 if report.ready else 503
    return response


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition of this sidecar (every worker process under gunicorn)."""
    return Response(sidecar_state().metrics.exposition(), content_type=CONTENT_TYPE)
