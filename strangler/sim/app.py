"""The Flask app factory of the legacy simulator: the routes of docs/legacy-api.yaml."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import structlog
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from strangler.sim import inputs
from strangler.sim.config import SimConfig
from strangler.sim.exceptions import ApiError
from strangler.sim.faults import FaultConfig
from strangler.sim.model import JOBS, STEPS
from strangler.sim.simulator import Simulator

__all__ = ["create_app", "simulator"]

MAX_BODY_BYTES = 64 * 1024
_UNFAULTED = ("/healthz", "/_sim/")
_EXTENSION = "legacy_sim"

_log = structlog.get_logger()
orders = Blueprint("orders", __name__)
jobs = Blueprint("jobs", __name__)
control = Blueprint("control", __name__)


def create_app(config: SimConfig) -> Flask:
    """A Flask app serving one simulated legacy app; call ``simulator(app).start()`` to
    start its scheduler and ``.stop()`` to close it."""
    app = Flask("strangler.sim")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[_EXTENSION] = Simulator(config)
    app.before_request(_inject_faults)
    app.before_request(_authenticate)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    for blueprint in (orders, jobs, control):
        app.register_blueprint(blueprint)
    return app


def simulator(app: Flask | None = None) -> Simulator:
    """The Simulator behind ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    sim: Simulator = target.extensions[_EXTENSION]
    return sim


# Orders


@orders.post("/orders")
def create_order() -> tuple[Response, int]:
    new = inputs.new_order(inputs.json_body(request.get_data(), required=True))
    key = inputs.idempotency_key(request.headers.get("Idempotency-Key"))
    order, created = simulator().book.create(new, key)
    return jsonify(order.to_json()), 201 if created else 200


@orders.get("/orders")
def list_orders() -> Response:
    query = inputs.list_query(request.args)
    found = simulator().store.list_orders(
        status=query.status,
        processing_mode=query.processing_mode,
        updated_since=query.updated_since,
        limit=query.limit + 1,
    )
    page = found[: query.limit]
    return jsonify(
        {"orders": [order.to_json() for order in page], "has_more": len(found) > query.limit}
    )


@orders.get("/orders/<order_id>")
def get_order(order_id: str) -> Response:
    return jsonify(simulator().book.get(order_id).to_json())


@orders.post("/orders/<order_id>/claim")
def claim(order_id: str) -> Response:
    body = inputs.json_body(request.get_data(), required=False)
    dry_run = inputs.dry_run(body, request.args)
    key = inputs.idempotency_key(request.headers.get("Idempotency-Key"))
    answer = simulator().book.claim(order_id, key, dry_run=dry_run)
    return _replayable(answer.to_json(), answer.replayed)


@orders.post("/orders/<order_id>/release")
def release(order_id: str) -> Response:
    reason = inputs.release_reason(inputs.json_body(request.get_data(), required=False))
    return jsonify(simulator().book.release(order_id, reason).to_json())


@orders.post("/orders/<order_id>/<any(fraud_scan, authorize_payment, fulfill):step>")
def run_step(order_id: str, step: str) -> Response:
    body = inputs.json_body(request.get_data(), required=False)
    dry_run = inputs.dry_run(body, request.args)
    inputs.idempotency_key(request.headers.get("Idempotency-Key"))
    answer = simulator().book.api_step(order_id, STEPS[step].name, dry_run=dry_run)
    return _replayable(dict(answer.body), bool(answer.body.get("replayed")))


# Jobs


@jobs.get("/jobs")
def list_jobs() -> Response:
    return jsonify({"jobs": simulator().job_infos()})


@jobs.post("/jobs/<job>/run")
def run_job(job: str) -> Response:
    if job not in JOBS:
        raise ApiError(404, "not_found", f"no job {job!r}; the jobs are {', '.join(JOBS)}")
    return jsonify(simulator().jobs.run(job, trigger="manual"))


# Control (simulator only)


@control.get("/healthz")
def health() -> Response:
    return jsonify({"status": "ok"})


@control.get("/_sim/faults")
def get_faults() -> Response:
    return jsonify(simulator().faults.state())


@control.put("/_sim/faults")
def put_faults() -> Response:
    config, seed = FaultConfig.from_json(inputs.json_body(request.get_data(), required=True))
    faults = simulator().faults
    faults.configure(config, seed=seed)
    return jsonify(faults.state())


# Hooks and error answers


def _inject_faults() -> Response | None:
    if request.path.startswith(_UNFAULTED):
        return None
    fault = simulator().faults.before_request()
    if fault is None:
        return None
    status, body = fault
    response = jsonify(body)
    response.status_code = status
    return response


def _authenticate() -> Response | None:
    if request.path == "/healthz":
        return None
    config = simulator().config
    if config.token is not None:
        expected = f"Bearer {config.token}"
    elif config.basic_auth is not None:
        pair = ":".join(config.basic_auth).encode()
        expected = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    scheme = "Bearer" if config.token is not None else 'Basic realm="legacy"'
    response = jsonify(
        {"error": "unauthorized", "message": "missing or wrong credentials in Authorization"}
    )
    response.status_code = 401
    response.headers["WWW-Authenticate"] = scheme
    return response


def _replayable(body: dict[str, Any], replayed: bool) -> Response:
    response = jsonify(body)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _api_error(exc: ApiError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    message = {
        404: f"no route {request.method} {request.path}; see docs/legacy-api.yaml",
        413: f"the body is larger than {MAX_BODY_BYTES} bytes",
    }.get(status, exc.description or exc.name)
    return jsonify({"error": codes.get(status, "http_error"), "message": message}), status


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    _log.exception("sim_unexpected_error", path=request.path)
    return jsonify({"error": "internal", "message": f"unexpected error: {exc}"}), 500
