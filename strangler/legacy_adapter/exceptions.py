"""Errors of the legacy adapter; no ``urllib3`` exception ever leaves the package::

LegacyError                       anything that went wrong talking to the legacy app
 +-- LegacyUnavailable            retryable: refused, timed out, 5xx, breaker open
 |    +-- CircuitOpen             the breaker is failing calls fast
 +-- LegacyRejected               a 4xx answer, not retryable (.status, .body)
 |    +-- OrderNotFound           404 for an order
 |    +-- ClaimConflict           409: the order is not ours to act on
 +-- LegacyProtocolError          an answer that breaks the contract
 +-- WaitTimeout (TimeoutError)   wait_until_terminal ran out of time
"""

from __future__ import annotations

from typing import Any

from strangler.exceptions import StranglerError

__all__ = [
    "CircuitOpen",
    "ClaimConflict",
    "LegacyError",
    "LegacyProtocolError",
    "LegacyRejected",
    "LegacyUnavailable",
    "OrderNotFound",
    "WaitTimeout",
]


class LegacyError(StranglerError):
    """Base of every error the legacy adapter raises."""


class LegacyUnavailable(LegacyError):
    """The legacy app did not answer usefully (refused, timeout, 5xx); worth retrying later.

    ``status`` is the HTTP status for a 5xx answer, None when there was no answer;
    ``code`` is the app's own error code from the answer's JSON body (e.g.
    ``payment_gateway_error``), if any; ``attempts`` counts the HTTP attempts made
    before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 0,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.code = code


class CircuitOpen(LegacyUnavailable):
    """The circuit breaker is open: the call was not attempted.

    ``retry_after_s`` is how long until the breaker lets a probe call through.
    """

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"legacy app circuit breaker is open; next probe in {retry_after_s:.2f}s",
            attempts=0,
        )
        self.retry_after_s = retry_after_s


class LegacyRejected(LegacyError):
    """The legacy app answered 4xx: the request is wrong or not allowed now; do not retry.

    ``status`` is the HTTP status, ``body`` the decoded JSON answer (or its text when it
    was not JSON), ``code`` the contract's error code (``body["error"]``) when present.
    """

    def __init__(self, message: str, *, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.code: str | None = body.get("error") if isinstance(body, dict) else None


class OrderNotFound(LegacyRejected):
    """The legacy app does not know the order (404)."""

    def __init__(self, order_id: str, *, body: Any) -> None:
        super().__init__(f"legacy app has no order {order_id!r}", status=404, body=body)
        self.order_id = order_id


class ClaimConflict(LegacyRejected):
    """409: the order is not ours to act on now.

    ``code`` says why: ``claimed_elsewhere``, ``batch_owned`` (a batch job has it),
    ``terminal``, ``not_claimed`` or ``wrong_status`` (see docs/legacy-api.yaml).
    """

    def __init__(self, order_id: str, *, body: Any) -> None:
        code = body.get("error") if isinstance(body, dict) else None
        super().__init__(
            f"legacy app refused the call on order {order_id!r}: {code or 'conflict'}",
            status=409,
            body=body,
        )
        self.order_id = order_id


class LegacyProtocolError(LegacyError):
    """The legacy app's answer breaks the contract (malformed JSON, missing field)."""


class WaitTimeout(LegacyError, TimeoutError):
    """An order did not reach a terminal status in time; ``last_status`` is what was seen."""

    def __init__(self, order_id: str, timeout_s: float, last_status: str | None) -> None:
        super().__init__(
            f"order {order_id!r} not terminal after {timeout_s}s (last status: {last_status})"
        )
        self.order_id = order_id
        self.timeout_s = timeout_s
        self.last_status = last_status
