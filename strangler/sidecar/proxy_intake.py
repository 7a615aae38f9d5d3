"""Takes an intercepted order into the ledger before its answer goes back to the client.

The proxy reads the order route's 2xx answer (up to the tee limit) and hands it here
first: the order is durable in the ledger before the client sees a byte of the answer,
so a hard kill of the sidecar cannot lose an order the client was told about. When the
ledger cannot take it, the client still gets the upstream's answer (the order exists
upstream); the miss is logged (``intake_missed``) and counted, and reconciliation with
the legacy app adopts the order later. An unreadable answer goes to the rejected table,
also before the answer is sent.
"""

from __future__ import annotations

import structlog

from strangler.exceptions import InvalidNotification, StranglerError
from strangler.orders import OrderNotification
from strangler.sidecar.interception import FieldMapping, notification_from_answer
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.seams import IntakeRouter, SidecarLedger

__all__ = ["PROXY_SOURCE", "InterceptedAnswers"]

PROXY_SOURCE = "proxy"
_log = structlog.get_logger(__name__)


class InterceptedAnswers:
    """The proxy's hook for intercepted answers: read the order, write it to the ledger."""

    def __init__(
        self,
        mapping: FieldMapping,
        router: IntakeRouter,
        ledger: SidecarLedger,
        metrics: SidecarMetrics,
        *,
        tee_limit: int,
    ) -> None:
        self._mapping = mapping
        self._router = router
        self._ledger = ledger
        self._metrics = metrics
        self._tee_limit = tee_limit

    def __call__(self, path: str, status: int, body: bytes | None) -> str | None:
        """Take the order (or the rejected body) in; return its order_id when there is one.

        Never raises: the answer goes to the client whatever the ledger does.
        """
        if body is None:
            self._reject(
                b"",
                f"the {status} answer to {path} could not be read whole "
                f"(over {self._tee_limit} bytes, or cut off)",
            )
            return None
        try:
            order = notification_from_answer(body, self._mapping)
        except InvalidNotification as exc:
            self._reject(body, f"the {status} answer to {path}: {exc}")
            return None
        self._take(order)
        return order.order_id

    def _take(self, order: OrderNotification) -> None:
        try:
            result = self._router.intake(order, source=PROXY_SOURCE)
        except StranglerError as exc:
            self._missed(order, str(exc))
        except Exception as exc:  # the client gets its answer whatever went wrong here
            _log.exception("intake_crashed", order_id=order.order_id)
            self._missed(order, f"{type(exc).__name__}: {exc}")
        else:
            self._metrics.count_intake(PROXY_SOURCE, "new" if result.new else "duplicate")

    def _missed(self, order: OrderNotification, error: str) -> None:
        _log.error("intake_missed", **order.log_fields(), source=PROXY_SOURCE, error=error)
        self._metrics.count_intake(PROXY_SOURCE, "failed")
        self._metrics.intake_missed.labels(PROXY_SOURCE).inc()

    def _reject(self, raw: bytes, reason: str) -> None:
        try:
            self._ledger.record_rejected(raw, reason=reason, source=PROXY_SOURCE)
        except StranglerError as exc:
            _log.error("rejected_answer_not_recorded", source=PROXY_SOURCE, error=str(exc))
            self._metrics.count_intake(PROXY_SOURCE, "failed")
            return
        self._metrics.count_intake(PROXY_SOURCE, "invalid")
