"""Takes intercepted orders in after their answer has been sent, on a background thread.

The queue is bounded: when it is full the caller's thread does the intake itself
(back-pressure rather than loss). Each intake is tried a few times, since the answer
has already gone out and this is the order's only way into the ledger.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import structlog

from strangler.exceptions import InvalidNotification, StranglerError
from strangler.orders import OrderNotification
from strangler.sidecar.interception import FieldMapping, notification_from_answer
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.seams import IntakeRouter, SidecarLedger

__all__ = ["PROXY_SOURCE", "BackgroundIntake", "InterceptedAnswers"]

PROXY_SOURCE = "proxy"
_ATTEMPTS = 3
_BACKOFF_S = 0.2
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Accepted:
    order: OrderNotification


@dataclass(frozen=True, slots=True)
class _Rejected:
    raw: bytes
    reason: str


class BackgroundIntake:
    """A bounded queue and one worker thread feeding the router (``source="proxy"``).

    Before :meth:`start` and after :meth:`stop`, items are taken in on the caller's thread.
    """

    def __init__(
        self,
        router: IntakeRouter,
        ledger: SidecarLedger,
        metrics: SidecarMetrics,
        *,
        maxsize: int = 10_000,
    ) -> None:
        self._router = router
        self._ledger = ledger
        self._metrics = metrics
        self._queue: queue.Queue[_Accepted | _Rejected | None] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None

    def submit_order(self, order: OrderNotification) -> None:
        """Queue a valid notification for intake; never blocks the caller for long."""
        self._put(_Accepted(order))

    def submit_rejected(self, raw: bytes, reason: str) -> None:
        """Queue an invalid answer body for the rejected table."""
        self._put(_Rejected(raw, reason))

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="strangler-proxy-intake", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Take in everything queued so far, then stop the worker thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            _log.error("proxy intake did not drain in time", queued=self._queue.qsize())

    def _put(self, item: _Accepted | _Rejected) -> None:
        if self._thread is None:
            self._process(item)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            _log.warning("proxy intake queue full; taking the order in on the request thread")
            self._process(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._process(item)
            finally:
                self._queue.task_done()

    def _process(self, item: _Accepted | _Rejected) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._take(item)
                return
            except StranglerError as exc:
                if attempt == _ATTEMPTS:
                    self._give_up(item, exc)
                    return
                time.sleep(_BACKOFF_S * attempt)

    def _take(self, item: _Accepted | _Rejected) -> None:
        if isinstance(item, _Accepted):
            result = self._router.intake(item.order, source=PROXY_SOURCE)
            self._metrics.count_intake(PROXY_SOURCE, "new" if result.new else "duplicate")
        else:
            self._ledger.record_rejected(item.raw, reason=item.reason, source=PROXY_SOURCE)
            self._metrics.count_intake(PROXY_SOURCE, "invalid")

    def _give_up(self, item: _Accepted | _Rejected, exc: StranglerError) -> None:
        if isinstance(item, _Accepted):
            _log.error(
                "intercepted order could not be taken in",
                **item.order.log_fields(),
                error=str(exc),
                attempts=_ATTEMPTS,
            )
        else:
            _log.error("intercepted rejected answer could not be recorded", error=str(exc))
        self._metrics.count_intake(PROXY_SOURCE, "failed")


class InterceptedAnswers:
    """The proxy's hook for intercepted answers: read the order, queue it for intake."""

    def __init__(self, mapping: FieldMapping, intake: BackgroundIntake, *, tee_limit: int) -> None:
        self._mapping = mapping
        self._intake = intake
        self._tee_limit = tee_limit

    def __call__(self, path: str, status: int, body: bytes | None) -> str | None:
        """Queue the order (or the rejected body); return its order_id when there is one."""
        if body is None:
            self._intake.submit_rejected(
                b"",
                f"the {status} answer to {path} could not be read whole "
                f"(over {self._tee_limit} bytes, or cut off)",
            )
            return None
        try:
            order = notification_from_answer(body, self._mapping)
        except InvalidNotification as exc:
            self._intake.submit_rejected(body, f"the {status} answer to {path}: {exc}")
            return None
        self._intake.submit_order(order)
        return order.order_id
