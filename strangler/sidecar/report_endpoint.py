"""``GET /_strangler/report``: the comparison report as JSON, the same as ``strangler report``.

Read-only and open like the order story (no admin token): it carries counts, rates, order
ids and step decisions, never payment data. Query parameters: ``since``, ``until`` (ISO
8601, UTC when no zone), ``examples`` (0..100); ``since=step`` is the window the rollout
gate judges (orders routed since the current step began: the dashboard's view). Verdict
thresholds are the defaults. The report is read in one read-only snapshot (it
never blocks the intake) by a child process at a lower CPU priority (nice +10)
(strangler.sidecar.report_process: the intake wins the cores and shares no GIL with it),
one report at a time. The same query within :data:`REPORT_CACHE_S` seconds gets the same
report, computed once however many ask at the same time; past
:data:`~strangler.sidecar.report_cache.MAX_PENDING` different queries waiting, one more
is answered 503 ``reports_busy`` with ``Retry-After``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from flask import Blueprint, Response, request

from strangler.exceptions import FlagFileError, LedgerError, UnleashAdminError
from strangler.ledger.report_queries import check_window
from strangler.orders import ISO_TIMESTAMP
from strangler.rollout.gate import window_start
from strangler.sidecar.errors import json_error
from strangler.sidecar.exceptions import ReportsBusy, ReportUnavailable
from strangler.sidecar.report_cache import REPORT_CACHE_S
from strangler.sidecar.seams import ReportRunner, RolloutController, SidecarLedger
from strangler.sidecar.state import sidecar_state

__all__ = ["REPORT_PATH", "blueprint"]

_log = structlog.get_logger()
REPORT_PATH = "/_strangler/report"
MAX_EXAMPLES = 100
STEP = "step"
blueprint = Blueprint("report", __name__)
# since (a time, "step" or None), until, examples: the cache's key.
_Query = tuple[datetime | str | None, datetime | None, int]


class _BadQuery(ValueError):
    pass


def _when(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        if not ISO_TIMESTAMP.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        since_step = " or step" if name == "since" else ""
        raise _BadQuery(
            f"{name}={value!r} is not an ISO 8601 time such as 2030-01-31T12:00:00Z{since_step}"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _examples() -> int:
    value = request.args.get("examples", "10")
    if not value.isdigit() or int(value) > MAX_EXAMPLES:
        raise _BadQuery(f"examples={value!r} must be a whole number from 0 to {MAX_EXAMPLES}")
    return int(value)


def _query() -> _Query:
    """The query, checked before any read; raises ValueError saying what is wrong."""
    step = request.args.get("since") == STEP
    since = None if step else _when("since")
    until, examples = _when("until"), _examples()
    check_window(since, until, examples)
    return STEP if step else since, until, examples


def _build(
    rollout: RolloutController, ledger: SidecarLedger, reports: ReportRunner, query: _Query
) -> str:
    since, until, examples = query
    start = window_start(ledger, rollout.show()) if since == STEP else since
    assert not isinstance(start, str)
    if start is not None and start >= (until or datetime.now(UTC)):
        raise _BadQuery(f"the current step began at {start.isoformat()}, not before until")
    return reports.report(since=start, until=until, examples=examples)


@blueprint.get(REPORT_PATH)
def report() -> Response:
    """The report over orders routed in ``[since, until)``, as the JSON of docs/reports.md."""
    try:
        query = _query()
    except ValueError as exc:
        return json_error(400, "invalid_query", str(exc))
    state = sidecar_state()
    ledger = state.runtime.ledger
    try:
        body = state.report_cache.get(
            query, lambda: _build(state.rollout, ledger, state.reports, query)
        )
    except Exception as exc:  # mapped to its answer in _failed
        return _failed(exc)
    # The child's JSON text as it is: not parsed and dumped again in the intake's process.
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"max-age={REPORT_CACHE_S:g}"
    return response


def _failed(exc: Exception) -> Response:
    """The answer to a report that could not be computed."""
    if isinstance(exc, _BadQuery):
        return json_error(400, "invalid_query", str(exc))
    if isinstance(exc, LedgerError):
        return json_error(503, "ledger_unavailable", str(exc))
    if isinstance(exc, ReportsBusy):
        busy = json_error(503, "reports_busy", str(exc))
        busy.headers["Retry-After"] = f"{REPORT_CACHE_S:.0f}"
        return busy
    if isinstance(exc, ReportUnavailable):
        return json_error(503, "report_unavailable", str(exc))
    if isinstance(exc, UnleashAdminError | FlagFileError):
        return json_error(502, "flag_store_unavailable", f"the step window needs the flag: {exc}")
    # The request was valid: a failure here is the server's.
    _log.error("report_failed", exc_info=exc)
    return json_error(500, "report_failed", f"the report could not be computed: {exc}")
