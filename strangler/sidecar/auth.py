"""The bearer token that guards admin and write endpoints (``STRANGLER_ADMIN_TOKEN``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Response, request

from strangler.sidecar.errors import json_error
from strangler.sidecar.state import sidecar_state

__all__ = ["AdminToken", "require_admin"]

P = ParamSpec("P")
R = TypeVar("R")


class AdminToken:
    """Checks ``Authorization: Bearer <token>`` in constant time; no token set = refuse all."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def refusal(self, authorization: str | None) -> Response | None:
        """None when the header carries the token, else the 401/503 answer to send."""
        if self._token is None:
            return json_error(
                503,
                "admin_token_unset",
                "this endpoint is disabled until an admin token is set: start the sidecar "
                "with STRANGLER_ADMIN_TOKEN=<secret> and send 'Authorization: Bearer <secret>'",
            )
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), self._token
        ):
            response = json_error(
                401,
                "unauthorized",
                "send 'Authorization: Bearer <token>' with the value of STRANGLER_ADMIN_TOKEN",
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="strangler"'
            return response
        return None


def require_admin(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Decorate a view so it runs only with the admin bearer token."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        refusal = sidecar_state().admin_token.refusal(request.headers.get("Authorization"))
        return refusal if refusal is not None else view(*args, **kwargs)

    return guarded
