"""``GET /_strangler/report``: the comparison report as JSON, the same as ``strangler report``.

Read-only and open like the order story (no admin token): it carries counts, rates, order
ids and step decisions, never payment data. Query parameters: ``since``, ``until`` (ISO
8601, UTC when no zone), ``examples`` (0..100); verdict thresholds are the defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import sqlalchemy as sa
import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.compare.render_json import report_to_dict
from strangler.ledger.report_queries import check_window, load_report
from strangler.sidecar.errors import json_error
from strangler.sidecar.state import sidecar_state

__all__ = ["REPORT_PATH", "ReportingLedger", "blueprint"]

_log = structlog.get_logger()
REPORT_PATH = "/_strangler/report"
MAX_EXAMPLES = 100
blueprint = Blueprint("report", __name__)


@runtime_checkable
class ReportingLedger(Protocol):
    """A ledger the report can read: it exposes its SQLAlchemy engine."""

    @property
    def engine(self) -> sa.Engine: ...


class _BadQuery(ValueError):
    pass


def _when(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadQuery(
            f"{name}={value!r} is not an ISO 8601 time such as 2030-01-31T12:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _examples() -> int:
    value = request.args.get("examples", "10")
    if not value.isdigit() or int(value) > MAX_EXAMPLES:
        raise _BadQuery(f"examples={value!r} must be a whole number from 0 to {MAX_EXAMPLES}")
    return int(value)


@blueprint.get(REPORT_PATH)
def report() -> Response:
    """The report over orders routed in ``[since, until)``, as the JSON of docs/reports.md."""
    try:
        since, until, examples = _when("since"), _when("until"), _examples()
        check_window(since, until, examples)
    except ValueError as exc:
        return json_error(400, "invalid_query", str(exc))
    ledger = sidecar_state().runtime.ledger
    if not isinstance(ledger, ReportingLedger):
        return json_error(503, "report_unavailable", "this ledger cannot be reported on")
    try:
        built = load_report(ledger.engine, since=since, until=until, examples=examples)
    except sa.exc.SQLAlchemyError as exc:
        return json_error(503, "ledger_unavailable", f"could not read the ledger: {exc}")
    except Exception as exc:  # the request was valid: a failure here is the server's
        _log.exception("report_failed")
        return json_error(500, "report_failed", f"the report could not be computed: {exc}")
    return jsonify(report_to_dict(built))
