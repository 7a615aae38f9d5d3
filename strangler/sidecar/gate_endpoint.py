"""``GET|POST /_strangler/gate``: the rollout gate's verdict on the current step, for CD tools.

Read-only: it judges what ``strangler rollout advance --dry-run`` judges
(:func:`strangler.rollout.gate.evaluate_gate`) and changes nothing, so it needs no token.
The gate's options come as query parameters or, for a Flagger webhook's POST, as the
body's ``metadata`` (which wins); their names are the ``rollout advance`` options without
dashes, with the same defaults (``plan`` defaults to ``1,5,25,50,100``).

The answer is the evaluation's JSON plus ``outcome`` (``pass``, ``hold`` or ``fail``)
and ``orders`` (new-side orders in the window, and how many are needed). ``outcome`` is
``pass`` when the gate would advance, or at the plan's last step when the verdict
passes; ``fail`` when it would fail or roll back; otherwise ``hold``. The status code is
200 when the outcome is the one ``ok_when`` asks for (``pass`` by default; ``fail`` for
a Flagger rollback webhook; ``any`` for Argo Rollouts' web provider, which treats every
non-2xx as an error), else 423 for a hold, 412 for a failure and 409 for a pass.

Only the rollout is read here (the flag file or Unleash): the window's report is seconds
of CPU on a big ledger, so the verdict is computed where the report endpoint's reports
are (strangler.sidecar.report_process: a child at nice +10 sharing no GIL with the
intake), through the same cache and queue: the same options and rollout within
:data:`~strangler.sidecar.report_cache.REPORT_CACHE_S` seconds get the same answer,
computed once; past :data:`~strangler.sidecar.report_cache.MAX_PENDING` different
reports waiting, 503 ``reports_busy`` with ``Retry-After``; a child that dies or overruns
gives 503 ``report_unavailable``.
"""

from __future__ import annotations

import json

import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.exceptions import StranglerError
from strangler.sidecar.errors import json_error
from strangler.sidecar.exceptions import ReportsBusy, ReportUnavailable
from strangler.sidecar.gate_answer import GateAnswer, GateParameterError, GateQuery, state_to_json
from strangler.sidecar.report_cache import REPORT_CACHE_S
from strangler.sidecar.state import sidecar_state

__all__ = ["GATE_PATH", "blueprint"]

GATE_PATH = "/_strangler/gate"

blueprint = Blueprint("gate", __name__)
_log = structlog.get_logger(__name__)


@blueprint.route(GATE_PATH, methods=["GET", "POST"])
def gate() -> Response:
    """The gate's verdict on the current step; the status code says what to do with it."""
    try:
        params = {**request.args.to_dict(), **_webhook_metadata()}
        GateQuery.parse(params)  # checked here: a bad option is answered 400 before any read
    except GateParameterError as exc:
        return json_error(400, "invalid_gate_parameter", str(exc))
    state = sidecar_state()
    try:
        rollout = state.rollout.show()
    except StranglerError as exc:
        return json_error(503, "rollout_unreadable", f"could not read the rollout: {exc}")
    rollout_json = state_to_json(rollout)
    # Keyed apart from the report endpoint's (since, until, examples) tuples.
    key = ("gate", json.dumps(params, sort_keys=True), json.dumps(rollout_json, sort_keys=True))
    try:
        text = state.report_cache.get(key, lambda: state.reports.gate(params, rollout_json))
        answer = GateAnswer.from_json(text)
    except ReportsBusy as exc:
        busy = json_error(503, "reports_busy", str(exc))
        busy.headers["Retry-After"] = f"{REPORT_CACHE_S:.0f}"
        return busy
    except ReportUnavailable as exc:
        return json_error(503, "report_unavailable", str(exc))
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


def _webhook_metadata() -> dict[str, str]:
    """A Flagger webhook's ``metadata`` (all strings); nothing for a GET or an empty POST."""
    if request.method != "POST" or not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise GateParameterError("the POST body must be a JSON object such as Flagger sends")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise GateParameterError(
            "metadata must be an object of strings (Flagger's webhook metadata)"
        )
    _log.info(
        "gate_webhook",
        canary=body.get("name"),
        namespace=body.get("namespace"),
        phase=body.get("phase"),
    )
    return metadata
