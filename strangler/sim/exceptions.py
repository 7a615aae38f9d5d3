"""Errors inside the legacy simulator; each one knows the HTTP answer it becomes::

SimError
 +-- ApiError               an HTTP error answer (status, code, message, fields)
 |    +-- InvalidInput      400: bad input; ``fields`` names each offending field
 +-- GatewayError           the simulated payment gateway failed (transient)
"""

from __future__ import annotations

from collections.abc import Mapping

from strangler.exceptions import StranglerError

__all__ = ["ApiError", "GatewayError", "InvalidInput", "SimError"]


class SimError(StranglerError):
    """Base of the simulator's errors."""


class ApiError(SimError):
    """An error answer: HTTP ``status``, stable ``code``, a ``message`` saying how to fix it.

    ``extra`` holds further JSON fields of the Error object (``order_id``,
    ``order_status``, ``processing_mode``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.extra = dict(extra or {})

    def to_json(self) -> dict[str, object]:
        """The Error object of docs/legacy-api.yaml."""
        body: dict[str, object] = {"error": self.code, "message": self.message, **self.extra}
        if self.fields:
            body["fields"] = self.fields
        return body


class InvalidInput(ApiError, ValueError):
    """400: the request's input is wrong; ``fields`` maps each bad field to why."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in sorted(fields.items()))
        super().__init__(400, "invalid_request", f"invalid request: {listed}", fields=fields)


class GatewayError(SimError):
    """The simulated payment gateway failed; the order stays and is retried."""
