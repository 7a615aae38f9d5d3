"""The bearer token that guards admin and write endpoints (``STRANGLER_ADMIN_TOKEN``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Response, request

from strangler.sidecar.errors import json_error
from strangler.sidecar.state import sidecar_state

__all__ = ["AdminToken", "Refusal", "require_admin"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the status, the JSON error and extra headers to send."""

    status: int
    error: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


_UNSET = Refusal(
    503,
    "admin_token_unset",
    "this endpoint is disabled until an admin token is set: start the sidecar "
    "with STRANGLER_ADMIN_TOKEN=<secret> and send 'Authorization: Bearer <secret>'",
)
_UNAUTHORIZED = Refusal(
    401,
    "unauthorized",
    "send 'Authorization: Bearer <token>' with the value of STRANGLER_ADMIN_TOKEN",
    headers=(("WWW-Authenticate", 'Bearer realm="strangler"'),),
)


class AdminToken:
    """Checks ``Authorization: Bearer <token>`` in constant time; no token set = refuse all."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def check(self, authorization: str | None) -> Refusal | None:
        """None when the header carries the token, else why it is refused (401 or 503)."""
        if self._token is None:
            return _UNSET
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), self._token
        ):
            return _UNAUTHORIZED
        return None

    def refusal(self, authorization: str | None) -> Response | None:
        """None when the header carries the token, else the 401/503 answer to send."""
        refused = self.check(authorization)
        if refused is None:
            return None
        response = json_error(refused.status, refused.error, refused.message)
        response.headers.extend(refused.headers)
        return response


def require_admin(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Decorate a view so it runs only with the admin bearer token."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        refusal = sidecar_state().admin_token.refusal(request.headers.get("Authorization"))
        return refusal if refusal is not None else view(*args, **kwargs)

    return guarded
