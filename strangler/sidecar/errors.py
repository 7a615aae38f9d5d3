"""JSON error answers for the /_strangler/ API: ``{"error": code, "message": why, ...}``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from strangler.exceptions import LedgerError

__all__ = ["json_error", "register_error_handlers"]


def json_error(status: int, error: str, message: str, **extra: Any) -> Response:
    """A JSON error response; ``extra`` adds fields such as ``fields`` for invalid input."""
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors and an unavailable ledger in JSON instead of HTML."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(LedgerError, _ledger_error)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    name = (exc.name or "error").lower().replace(" ", "_")
    response = json_error(code, name, exc.description or exc.name or "error")
    if code == 405 and exc.response is None:
        allowed = exc.get_headers()
        response.headers.extend([(k, v) for k, v in allowed if k.lower() == "allow"])
    return response


def _ledger_error(exc: LedgerError) -> Response:
    return json_error(503, "ledger_unavailable", f"{exc}; try again shortly")
