"""``LegacyClient``: the single place that talks to the legacy Rails app.

Which calls are retried (on refused connections, timeouts and 5xx answers, with
exponential backoff): every call but ``run_job``. Reads are safe to repeat; the writes
are idempotent by contract (docs/legacy-api.yaml): ``create_order`` on the order id (or
its Idempotency-Key when there is none), ``claim`` on its Idempotency-Key, ``release``
by nature, and the three steps on (order, step). A job run is not idempotent (a second
run takes the next batch), so it is sent once.

Idempotency keys are stable: ``<client_id>:<operation>:<order_id>``. A process that
crashed after claiming an order and claims it again on restart gets True, not a 409.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog

from strangler.legacy_adapter import _parse
from strangler.legacy_adapter._transport import Answer, Credentials, Transport, split_credentials
from strangler.legacy_adapter.breaker import CircuitBreaker
from strangler.legacy_adapter.exceptions import (
    ClaimConflict,
    LegacyProtocolError,
    LegacyUnavailable,
    OrderNotFound,
    WaitTimeout,
)
from strangler.legacy_adapter.models import JobInfo, JobRun, LegacyOrder, ListedOrder, StepOutcome
from strangler.orders import OrderNotification

if TYPE_CHECKING:
    from strangler.settings import Settings

__all__ = ["JOB_NAMES", "LegacyClient"]

JOB_NAMES = ("fraud_scan", "payment_authorization", "fulfillment")
MAX_LIST_LIMIT = 1000
MAX_REASON_LENGTH = 500

_log = structlog.get_logger()


class LegacyClient:
    """Client of the legacy app's HTTP contract; implements the router's ``LegacyPath``.

    Every call has a connect and a read timeout, goes through the circuit breaker
    (``breaker``, shared or one of its own), and raises only ``LegacyError``s:
    ``LegacyUnavailable`` (retryable), ``LegacyRejected`` (4xx; ``OrderNotFound``,
    ``ClaimConflict``) or ``LegacyProtocolError``. Credentials (a bearer ``token`` or
    ``basic_auth``) are never logged. Thread-safe; close it (or use ``with``) to free
    the connection pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.05,
        breaker: CircuitBreaker | None = None,
        client_id: str = "strangler",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base, url_credentials = split_credentials(base_url)
        if token and (basic_auth or url_credentials):
            raise ValueError("give the legacy client a bearer token or basic auth, not both")
        credentials = basic_auth or url_credentials
        auth: Credentials | None = None
        if token:
            auth = Credentials.bearer(token)
        elif credentials:
            auth = Credentials.basic(*credentials)
        self._auth_kind = "bearer" if token else "basic" if credentials else "none"
        self._client_id = client_id
        self._sleep = sleep
        self._clock = clock
        self._transport = Transport(
            base,
            credentials=auth,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            backoff_s=backoff_s,
            breaker=breaker or CircuitBreaker(clock=clock),
            sleep=sleep,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> LegacyClient:
        """A client for ``settings.legacy_url`` with ``settings.legacy_token``.

        Basic credentials may be given in the URL (``http://user:password@host``).
        ``overrides`` are passed to the constructor (timeouts, retries, breaker...).
        """
        return cls(settings.legacy_url, token=settings.legacy_token, **overrides)

    def __repr__(self) -> str:
        return f"LegacyClient(base_url={self.base_url!r}, auth={self._auth_kind!r})"

    def __enter__(self) -> LegacyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The legacy app's URL, without credentials."""
        return self._transport.base_url

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding this client's calls."""
        return self._transport.breaker

    @property
    def silent_attempt_s(self) -> float:
        """The longest one HTTP attempt waits on a legacy app that stops answering (seconds).

        The connect timeout plus the read timeout; the read timeout applies to each wait
        for data, so an app that keeps sending a few bytes can hold an attempt longer.
        """
        return self._transport.silent_attempt_s

    def close(self) -> None:
        """Release pooled connections (a view from single_attempt leaves them open)."""
        self._transport.close()

    def single_attempt(self) -> LegacyClient:
        """This client, sharing its pool and breaker, making one HTTP attempt per call.

        For a caller that retries by itself: the instant pipeline's Retry owns the
        retries of its steps, so that the two do not multiply (see docs/instant.md).
        Closing the view leaves the shared pool open.
        """
        view = copy.copy(self)
        view._transport = self._transport.single_attempt()
        return view

    def ping(self) -> None:
        """Check that the legacy app answers ``GET /healthz``; raises LegacyUnavailable."""
        answer = self._transport.call("GET", "/healthz", retry=False)
        answer.raise_for_rejection("the health check")

    # Orders

    def create_order(self, order: OrderNotification | Mapping[str, Any]) -> LegacyOrder:
        """Create the order in the legacy app, or get it back if it exists (idempotent)."""
        body = order.to_dict() if isinstance(order, OrderNotification) else dict(order)
        order_id = body.get("order_id")
        key = (
            f"{self._client_id}:create:{order_id}"
            if isinstance(order_id, str)
            else f"{self._client_id}:create:{uuid.uuid4()}"
        )
        answer = self._transport.call(
            "POST", "/orders", body=body, idempotency_key=key, retry=True, order_id=order_id
        )
        answer.raise_for_rejection("the new order")
        return _parse.order(answer.body)

    def get_order(self, order_id: str) -> LegacyOrder:
        """The order as the legacy app has it now; raises OrderNotFound."""
        answer = self._transport.call("GET", _order_path(order_id), retry=True, order_id=order_id)
        self._raise_for_order(answer, order_id, "reading")
        return _parse.order(answer.body)

    def list_orders(
        self,
        *,
        status: str | None = None,
        processing_mode: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 500,
    ) -> list[LegacyOrder]:
        """Orders ordered by (updated_at, order_id), at most ``limit`` (1..1000).

        ``updated_since`` is inclusive and must be timezone-aware.
        """
        body = self._listing(
            status=status, processing_mode=processing_mode, updated_since=updated_since, limit=limit
        )
        return _parse.order_list(body)

    def orders_updated_since(
        self, since: datetime | None, *, limit: int = 500
    ) -> list[LegacyOrder]:
        """Orders updated at or after ``since`` (all when None), oldest update first.

        Inclusive: the order(s) at exactly ``since`` come back again; de-duplicate on
        (order_id, updated_at). Pass the last ``updated_at`` seen to follow the app.
        """
        return self.list_orders(updated_since=since, limit=limit)

    def orders_listed_since(self, since: datetime | None, *, limit: int = 500) -> list[ListedOrder]:
        """As :meth:`orders_updated_since`, each order read only when asked for.

        Each entry's ``order_id`` and ``updated_at`` are checked on arrival; the rest of
        the order is checked and built by its ``order()``, so a reader that skips most
        orders of a page (the follower, the reconciler) builds only those it keeps, and an
        order it skips cannot fail its page.
        """
        return _parse.listed_orders(self._listing(updated_since=since, limit=limit))

    def _listing(
        self,
        *,
        status: str | None = None,
        processing_mode: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 500,
    ) -> Any:
        """The body of ``GET /orders`` with these filters."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        params = {"limit": str(limit)}
        if status is not None:
            params["status"] = status
        if processing_mode is not None:
            params["processing_mode"] = processing_mode
        if updated_since is not None:
            params["updated_since"] = _utc_text(updated_since)
        answer = self._transport.call("GET", "/orders", params=params, retry=True)
        answer.raise_for_rejection("the order listing")
        return answer.body

    def wait_until_terminal(
        self, order_id: str, timeout_s: float, poll_interval_s: float = 0.5
    ) -> LegacyOrder:
        """Poll the order until it is terminal; raises WaitTimeout or OrderNotFound.

        The legacy app being unavailable for a while does not end the wait early.
        """
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"timeout_s and poll_interval_s must be positive, got {timeout_s}, "
                f"{poll_interval_s}"
            )
        deadline = self._clock() + timeout_s
        last_status: str | None = None
        while True:
            try:
                current = self.get_order(order_id)
            except LegacyUnavailable as exc:
                _log.info("legacy_wait_unavailable", order_id=order_id, error=str(exc))
            else:
                if current.is_terminal:
                    return current
                last_status = current.status
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeout(order_id, timeout_s, last_status)
            self._sleep(min(poll_interval_s, remaining))

    # Batch jobs

    def run_job(self, name: str) -> JobRun:
        """Run one batch job now and return its run; sent once, never retried."""
        if name not in JOB_NAMES:
            raise ValueError(f"unknown job {name!r}; the jobs are {', '.join(JOB_NAMES)}")
        answer = self._transport.call("POST", f"/jobs/{name}/run", retry=False)
        answer.raise_for_rejection(f"running the job {name}")
        return _parse.job_run(answer.body)

    def jobs(self) -> list[JobInfo]:
        """The batch jobs with their schedule and recent runs."""
        answer = self._transport.call("GET", "/jobs", retry=True)
        answer.raise_for_rejection("the job listing")
        jobs = answer.body.get("jobs") if isinstance(answer.body, dict) else None
        if not isinstance(jobs, list):
            raise LegacyProtocolError("job listing: expected an object with a 'jobs' list")
        return [_parse.job_info(item) for item in jobs]

    # The per-order API

    def claim(
        self, order_id: str, *, dry_run: bool = False, idempotency_key: str | None = None
    ) -> bool:
        """Take the order from the batch jobs: True when it is ours (now or already).

        False when the batch jobs have it, it is claimed under another key, or it is
        done. A dry run reports whether a claim would succeed and holds nothing.
        Raises OrderNotFound for an unknown order.
        """
        key = None if dry_run else idempotency_key or self._key("claim", order_id)
        answer = self._transport.call(
            "POST",
            _order_path(order_id, "claim"),
            body={"dry_run": dry_run},
            idempotency_key=key,
            retry=True,
            order_id=order_id,
        )
        if answer.status == 409:
            _log.info("legacy_claim_refused", order_id=order_id, code=_code(answer.body))
            return False
        self._raise_for_order(answer, order_id, "claiming")
        return _parse.claim_decision(answer.body) == "claimed"

    def release(self, order_id: str, reason: str) -> None:
        """Hand the order back to the batch jobs at its current status (idempotent).

        ``reason`` is kept on the order; it is cut to 500 characters.
        """
        if len(reason) > MAX_REASON_LENGTH:
            reason = reason[: MAX_REASON_LENGTH - 1] + "\u2026"
        answer = self._transport.call(
            "POST",
            _order_path(order_id, "release"),
            body={"reason": reason},
            idempotency_key=self._key("release", order_id),
            retry=True,
            order_id=order_id,
        )
        self._raise_for_order(answer, order_id, "releasing")
        _parse.order(answer.body)

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Fraud-scan a claimed ``pending`` order: decision ``pass`` or ``reject``."""
        return self._step(order_id, "fraud_scan", dry_run)

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Authorise payment of a claimed ``fraud_checked`` order: ``authorized``/``declined``."""
        return self._step(order_id, "authorize_payment", dry_run)

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Fulfil a claimed ``authorized`` order: decision ``fulfilled``, with vouchers."""
        return self._step(order_id, "fulfill", dry_run)

    def _step(self, order_id: str, step: str, dry_run: bool) -> StepOutcome:
        """Run a step; repeating it returns its first result. Raises ClaimConflict on 409."""
        answer = self._transport.call(
            "POST",
            _order_path(order_id, step),
            body={"dry_run": dry_run},
            idempotency_key=None if dry_run else self._key(step, order_id),
            retry=True,
            order_id=order_id,
        )
        self._raise_for_order(answer, order_id, step)
        outcome = _parse.step_outcome(answer.body)
        if outcome.step != step:
            raise LegacyProtocolError(f"asked for {step} on {order_id!r}, got {outcome.step!r}")
        return outcome

    def _key(self, operation: str, order_id: str) -> str:
        return f"{self._client_id}:{operation}:{order_id}"

    @staticmethod
    def _raise_for_order(answer: Answer, order_id: str, what: str) -> None:
        if answer.status == 404:
            raise OrderNotFound(order_id, body=answer.body)
        if answer.status == 409:
            raise ClaimConflict(order_id, body=answer.body)
        answer.raise_for_rejection(f"{what} order {order_id!r}")


def _order_path(order_id: str, action: str | None = None) -> str:
    if not order_id:
        raise ValueError("order_id must not be empty")
    path = f"/orders/{quote(order_id, safe='')}"
    return f"{path}/{action}" if action else path


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(
            f"updated_since must be timezone-aware (e.g. datetime.now(UTC)), got {moment!r}"
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _code(body: Any) -> str | None:
    return body.get("error") if isinstance(body, dict) else None


if TYPE_CHECKING:
    from strangler.protocols import LegacyPath

    def _implements_legacy_path(client: LegacyClient) -> LegacyPath:
        return client
