"""The routing facade: take an order in, decide its path once, run it, record everything.

:meth:`Router.intake` only writes the durable row and wakes the dispatcher; the work
happens in :meth:`Router.process`, which a dispatcher worker calls while it holds the
order's lease (see strangler.routing.dispatcher). The decision is pinned before any side
effect: by the dispatcher's claim where the ledger can (:meth:`Router.decide_claimed`,
``order.pinned_now``), else by :meth:`Router.process` itself. Every step of processing
is idempotent, so an order resumed after a crash, or retried, is safe to process again.
An instant execution that has to wait (a Retry interval) is parked:
:meth:`Router.process` returns a :class:`Parked` disposition, the worker goes on with
other orders while the lease stays held, and the dispatcher calls ``resume`` when the
execution has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol, runtime_checkable

import structlog

from strangler.backoff import Backoff
from strangler.exceptions import StranglerError
from strangler.instant.results import ExecutionResult
from strangler.ledger.exceptions import LeaseLost
from strangler.ledger.records import Handoff, LeasedOrder, utc_now
from strangler.legacy_adapter.exceptions import LegacyRejected
from strangler.orders import Decision, OrderNotification, OrderStatus, Route, StepResult
from strangler.protocols import FlagSource, InstantBackend, LegacyPath, ParkingBackend

__all__ = [
    "Disposition",
    "ForgettingBackend",
    "IntakeResult",
    "Lease",
    "LeaseFlag",
    "Parked",
    "RetryPolicy",
    "Router",
    "RouterLedger",
]

_log = structlog.get_logger()

_TERMINAL_OUTCOMES = {
    "fulfilled": OrderStatus.FULFILLED,
    "rejected_fraud": OrderStatus.REJECTED_FRAUD,
    "payment_declined": OrderStatus.PAYMENT_DECLINED,
}
_FAILED_EXECUTIONS = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
LEGACY_OWNED_REASON = "the batch jobs had the order already (claim lost); legacy runs it"


class RouterLedger(Protocol):
    """The part of the ledger the router writes (SqlLedger in production); all idempotent."""

    def record_received(self, order: OrderNotification, *, source: str) -> bool:
        """Write the order if new; False for a duplicate (nothing changes)."""
        ...

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None: ...

    def pin_decision(
        self,
        order_id: str,
        decision: Decision,
        *,
        release_owner: str | None = None,
        start_running: bool = False,
    ) -> Decision:
        """Pin the decision unless one is pinned already; returns the pinned one."""
        ...

    def transition(
        self,
        order_id: str,
        status: OrderStatus,
        *,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move the order forward to ``status``; False when it was there or beyond."""
        ...

    def hand_off(
        self, order_id: str, kind: Handoff, *, reason: str, at: datetime | None = None
    ) -> bool: ...

    def record_step(self, step: StepResult, *, seq: int = 0) -> bool: ...

    def record_steps(self, steps: Sequence[tuple[StepResult, int]]) -> int: ...

    def finish(
        self,
        order_id: str,
        status: OrderStatus,
        steps: Sequence[tuple[StepResult, int]],
        *,
        at: datetime,
        release_owner: str,
    ) -> bool:
        """Record the steps, move to terminal ``status`` and release the lease, at once."""
        ...

    def record_dry_run_outcome(self, order_id: str, outcome: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What intake did: ``new`` is False for a duplicate (nothing changed)."""

    new: bool
    order_id: str


@dataclass(frozen=True, slots=True)
class Parked:
    """An order whose execution waits: keep its lease, and call ``resume`` (on a worker)
    once ``until`` is done; it returns the order's disposition."""

    until: Future[Any]
    resume: Callable[[], Disposition]


@dataclass(frozen=True, slots=True)
class Disposition:
    """What the dispatcher does with an order's lease after processing it.

    ``done``: nothing more to do here (the order is terminal, or the batch jobs have it
    and the follower records the rest). Otherwise the order is due again after
    ``retry_in_s`` seconds; ``error`` is kept as its last error. ``released``: the lease
    was given up already, so the dispatcher has nothing to release. ``parked``: the
    order waits for its execution, lease held (``done`` and the rest do not apply).
    """

    done: bool
    retry_in_s: float = 0.0
    error: str | None = None
    released: bool = False
    parked: Parked | None = None


DONE = Disposition(done=True)
# Done, and the lease was given up with the decision, in one transaction.
RELEASED = Disposition(done=True, released=True)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff (with jitter) across leases.

    An instant-path order is tried ``max_attempts`` times, then released to the batch
    jobs; handing it back is tried ``release_attempts`` more times, after which the order
    is marked ``failed`` (it needs a person). Delays are in seconds.
    """

    max_attempts: int = 5
    release_attempts: int = 10
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.release_attempts < 1:
            raise ValueError(
                "RetryPolicy needs max_attempts >= 1 and release_attempts >= 1, got "
                f"{self.max_attempts} and {self.release_attempts}"
            )

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th try failed."""
        jitter = (1 - self.jitter, 1 + self.jitter)
        return Backoff(self.base_delay_s, self.max_delay_s, jitter).delay_s(attempt)


@runtime_checkable
class ForgettingBackend(Protocol):
    """An instant backend that keeps finished executions until told they are recorded."""

    def forget(self, order_id: str, *, dry_run: bool = False) -> None:
        """Drop the order's finished execution (its end is in the ledger)."""
        ...


class LeaseFlag:
    """A flag one thread sets and others read: ``threading.Event``'s ``set``, ``is_set``
    and ``clear``, without its condition (nobody waits on a lease's flags).

    Building two Events cost about 4 us of every order's CPU; reading and writing one
    attribute is atomic under the GIL, which is all these flags need.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class Lease:
    """A worker's hold on one order.

    The dispatcher sets ``lost`` when renewing it fails (another worker took the order
    over) and ``released`` once the worker is giving it up (so that is not taken for a loss).
    """

    __slots__ = ("lost", "order_id", "owner", "released")

    def __init__(self, order_id: str, owner: str) -> None:
        self.order_id = order_id
        self.owner = owner
        self.lost = LeaseFlag()
        self.released = LeaseFlag()

    def check(self) -> None:
        """Raise LeaseLost when another worker has taken the order over."""
        if self.lost.is_set():
            raise LeaseLost(self.order_id, self.owner)


class Router:
    """Decides each order's path once, runs it, and records every step in the ledger.

    ``on_intake`` is called with the order id after each new order is written (the
    dispatcher's wake-up);
    ``on_dry_run`` with the order id after a shadow dry run is recorded (the comparison's
    late matching) and ``on_legacy_routed`` after an order is routed to legacy (the noise
    probe). Neither may raise.
    """

    def __init__(
        self,
        ledger: RouterLedger,
        flags: FlagSource,
        legacy: LegacyPath,
        instant: InstantBackend,
        *,
        retry: RetryPolicy | None = None,
        run_timeout_s: float = 60.0,
        on_intake: Callable[[str], None] | None = None,
        on_dry_run: Callable[[str], None] | None = None,
        on_legacy_routed: Callable[[str], object] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.ledger = ledger
        self.flags = flags
        self.legacy = legacy
        self.instant = instant
        self.retry = retry or RetryPolicy()
        self.run_timeout_s = run_timeout_s
        self.on_intake = on_intake
        self.on_dry_run = on_dry_run
        self.on_legacy_routed = on_legacy_routed
        self._clock = clock
        self._begin = instant.begin if isinstance(instant, ParkingBackend) else None
        self._forget = instant.forget if isinstance(instant, ForgettingBackend) else None

    # -- intake -----------------------------------------------------------------------

    def intake(self, order: OrderNotification, *, source: str) -> IntakeResult:
        """Write the order to the ledger (a duplicate changes nothing) and wake a worker.

        Returns as soon as the row is durable; processing happens on a dispatcher
        worker. Raises LedgerError when the ledger cannot be written.
        """
        new = self.ledger.record_received(order, source=source)
        _log.info("order_received", order_id=order.order_id, source=source, new=new)
        if new and self.on_intake is not None:
            self.on_intake(order.order_id)
        return IntakeResult(new=new, order_id=order.order_id)

    def reject(self, raw_body: bytes | str, *, reason: str, source: str) -> None:
        """Keep a notification that failed validation (nothing is silently dropped)."""
        self.ledger.record_rejected(raw_body, reason=reason, source=source)
        _log.info("notification_rejected", source=source, reason=reason)

    # -- processing ----------------------------------------------------------------------

    def process(self, order: LeasedOrder, lease: Lease) -> Disposition:
        """Take one leased order one stage further; idempotent, safe to call again.

        Expected failures (the legacy app or the pipeline down) come back as a retry;
        LeaseLost propagates when another worker took the order over.
        """
        log = _log.bind(order_id=order.order_id, attempt=order.attempts)
        decision = order.decision
        # Pinned now on a path whose run starts next: its ``order_routed`` line is written
        # when the run starts, in one line with it (``run_started``), or alone if it does not.
        routed: Decision | None = None
        if decision is not None and order.pinned_now:  # pinned by the claim (decide_claimed)
            if decision.path is Route.LEGACY:  # the claim released its lease too
                self.routed_at_claim(order)
                return RELEASED
            routed = decision
        elif decision is None:
            decision, routed = self._route(order, lease, log)
            if decision.path is Route.LEGACY and self.on_legacy_routed is not None:
                self.on_legacy_routed(order.order_id)
            if lease.released.is_set():
                return RELEASED
        try:
            lease.check()
        except LeaseLost:
            _log_routed(log, routed)
            raise
        if decision.path is Route.LEGACY:
            return DONE
        if decision.path is Route.SHADOW:
            return self._shadow(order, log, routed)
        return self._instant(order, lease, log, routed=routed)

    def decide_claimed(self, order: LeasedOrder) -> Decision:
        """The flag's decision for a claimed order, for the claim to pin (never raises).

        The dispatcher passes this to ``claim_due`` (strangler.ledger.SqlLedger.claim_due),
        which pins it in the claim's transaction; :meth:`process` then goes straight to
        the run (``order.pinned_now``). A failing flag check means legacy, as in
        :meth:`process`.
        """
        return self._decide(order)

    def routed_at_claim(self, order: LeasedOrder) -> None:
        """What follows a legacy-path pin made by the claim (its lease released with it):
        the ``order_routed`` line and ``on_legacy_routed``. Never raises an order's error:
        the dispatcher's feeder calls it."""
        decision = order.decision
        if decision is None or not order.pinned_now:
            return
        _log.info("order_routed", order_id=order.order_id, **decision.to_dict())
        if decision.path is Route.LEGACY and self.on_legacy_routed is not None:
            self.on_legacy_routed(order.order_id)

    def _route(
        self, order: LeasedOrder, lease: Lease, log: structlog.typing.FilteringBoundLogger
    ) -> tuple[Decision, Decision | None]:
        """Decide and pin; the decision, and again when the caller logs ``order_routed``.

        On the instant path an order pinned now starts running in the same transaction;
        on the legacy path the lease goes with it (``lease.released``). ``order_routed``
        is logged here, unless the decision was pinned now on the instant or the shadow
        path: it comes back second, and the caller logs it with the run's start.
        """
        decision = self._decide(order)
        instant = decision.path is Route.INSTANT
        if decision.path is not Route.LEGACY:
            pinned = self.ledger.pin_decision(order.order_id, decision, start_running=instant)
        else:
            # Set first, so that a renewal running meanwhile does not take it for a loss.
            lease.released.set()
            pinned = self.ledger.pin_decision(order.order_id, decision, release_owner=lease.owner)
            if pinned is not decision:  # an earlier decision: nothing was released
                lease.released.clear()
        if pinned is decision and pinned.path is not Route.LEGACY:
            return pinned, pinned
        log.info("order_routed", **pinned.to_dict())
        return pinned, None

    def _decide(self, order: LeasedOrder) -> Decision:
        try:
            return self.flags.decide(order.notification)
        except Exception as exc:  # by design, a failing flag check means legacy
            _log.error(
                "flag_source_raised",
                order_id=order.order_id,
                attempt=order.attempts,
                error=repr(exc),
            )
            return Decision(
                path=Route.LEGACY,
                variant="disabled",
                rollout=0,
                flag_revision="unknown",
                reason=f"flag source raised {type(exc).__name__}: {exc}; legacy by default",
            )

    def _execution(self, order: LeasedOrder, *, dry_run: bool) -> Future[ExecutionResult]:
        """The order's execution, begun on this thread: done unless it waits (parked).

        A backend that cannot park runs it here to its end (or ``run_timeout_s``).
        """
        if self._begin is not None:
            return self._begin(order.notification, dry_run=dry_run)
        future: Future[ExecutionResult] = Future()
        try:
            result = self.instant.run(
                order.notification, dry_run=dry_run, timeout_s=self.run_timeout_s
            )
        except StranglerError as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    @staticmethod
    def _when_ended(
        execution: Future[ExecutionResult],
        then: Callable[[Future[ExecutionResult]], Disposition],
    ) -> Disposition:
        """``then(execution)`` now if it has ended, else a parked disposition that will."""
        if execution.done():
            return then(execution)
        return Disposition(done=False, parked=Parked(execution, partial(then, execution)))

    def _shadow(
        self,
        order: LeasedOrder,
        log: structlog.typing.FilteringBoundLogger,
        routed: Decision | None,
    ) -> Disposition:
        _log_run_started(log, routed, dry_run=True)
        execution = self._execution(order, dry_run=True)
        return self._when_ended(execution, partial(self._shadow_ended, order, log))

    def _shadow_ended(
        self,
        order: LeasedOrder,
        log: structlog.typing.FilteringBoundLogger,
        execution: Future[ExecutionResult],
    ) -> Disposition:
        try:
            result = execution.result()
        except StranglerError as exc:
            if order.attempts >= self.retry.max_attempts:
                log.warning("shadow_dry_run_gave_up", error=str(exc))
                return Disposition(
                    done=True, error=f"dry run gave up after {order.attempts} attempts: {exc}"
                )
            return self._retry(order, f"dry run failed: {exc}", log)
        self._record_steps(result)
        self.ledger.record_dry_run_outcome(order.order_id, result.outcome)
        log.info("shadow_dry_run_recorded", outcome=result.outcome, steps=len(result.steps))
        if self.on_dry_run is not None:
            self.on_dry_run(order.order_id)
        return DONE

    def _instant(
        self,
        order: LeasedOrder,
        lease: Lease,
        log: structlog.typing.FilteringBoundLogger,
        *,
        routed: Decision | None,
    ) -> Disposition:
        """Run the order on the instant path; ``routed``: pinned just now, running already."""
        if order.status.is_terminal or order.handoff is not None:
            _log_routed(log, routed)
            return DONE
        if order.attempts > self.retry.max_attempts:
            _log_routed(log, routed)
            return self._fall_back(
                order,
                f"instant path gave up after {self.retry.max_attempts} attempts: "
                f"{order.last_error}",
                log,
            )
        if routed is None:
            self.ledger.transition(order.order_id, OrderStatus.RUNNING)
        _log_run_started(log, routed, dry_run=False)
        execution = self._execution(order, dry_run=False)
        return self._when_ended(execution, partial(self._instant_ended, order, lease, log))

    def _instant_ended(
        self,
        order: LeasedOrder,
        lease: Lease,
        log: structlog.typing.FilteringBoundLogger,
        execution: Future[ExecutionResult],
    ) -> Disposition:
        """Record what the order's execution did (on a worker, parked or not)."""
        try:
            result = execution.result()
        except LegacyRejected as exc:
            # The legacy app refused a call (4xx): trying again would be refused again.
            return self._fall_back(order, f"the legacy app refused the instant path: {exc}", log)
        except StranglerError as exc:
            return self._retry(order, f"instant pipeline failed: {exc}", log)
        lease.check()
        if result.outcome in _TERMINAL_OUTCOMES:
            return self._finish(order, lease, result, log)
        self._record_steps(result)
        return self._conclude(order, result, log)

    def _finish(
        self,
        order: LeasedOrder,
        lease: Lease,
        result: ExecutionResult,
        log: structlog.typing.FilteringBoundLogger,
    ) -> Disposition:
        """Steps, terminal status and the lease's release in one write."""
        status = _TERMINAL_OUTCOMES[str(result.outcome)]
        # Set first, so that a renewal running meanwhile does not take it for a loss.
        lease.released.set()
        self.ledger.finish(
            order.order_id,
            status,
            _numbered(result),
            at=result.finished_at or self._clock(),
            release_owner=lease.owner,
        )
        if self._forget is not None:  # the ledger has the end: nothing will join it again
            self._forget(order.order_id)
        log.info("order_terminal", path=Route.INSTANT.value, status=status.value)
        return RELEASED

    def _conclude(
        self,
        order: LeasedOrder,
        result: ExecutionResult,
        log: structlog.typing.FilteringBoundLogger,
    ) -> Disposition:
        outcome = result.outcome
        if outcome == "fell_back":
            reason = _describe(result) or "the pipeline released the order to the batch jobs"
            self.ledger.hand_off(order.order_id, Handoff.FALLBACK, reason=reason)
            log.info("order_fell_back", reason=reason)
            return DONE
        if outcome == "legacy_owned":
            self.ledger.hand_off(order.order_id, Handoff.LEGACY_OWNED, reason=LEGACY_OWNED_REASON)
            log.info("order_legacy_owned")
            return DONE
        if result.status == "RUNNING":
            waited = f"still running after {self.run_timeout_s}s"
            return self._retry(order, f"instant execution {result.execution_id} {waited}", log)
        problem = _describe(result) or f"unexpected outcome {outcome!r}"
        reason = f"instant execution {result.execution_id} ended {result.status}: {problem}"
        return self._fall_back(order, reason, log, released_steps=_count(result, "release"))

    def _fall_back(
        self,
        order: LeasedOrder,
        reason: str,
        log: structlog.typing.FilteringBoundLogger,
        *,
        released_steps: int = 0,
    ) -> Disposition:
        """Hand the order back to the batch jobs (release the claim) and record why."""
        started = self._clock()
        try:
            self.legacy.release(order.order_id, reason)
        except LegacyRejected as exc:
            # Not ours to release (never claimed, or already done): the batch jobs have it.
            reason = f"{reason} (release refused: {exc})"
        except StranglerError as exc:
            limit = self.retry.max_attempts + self.retry.release_attempts
            if order.attempts >= limit:
                why = f"could not hand the order back to legacy after {limit} attempts: {exc}"
                self.ledger.transition(order.order_id, OrderStatus.FAILED, reason=why)
                log.error("order_failed", reason=why)
                return Disposition(done=True, error=why)
            return self._retry(order, f"release failed: {exc}", log)
        step = StepResult(
            order_id=order.order_id,
            path=Route.INSTANT,
            step="release",
            decision="released",
            started_at=started,
            finished_at=self._clock(),
            payload={"reason": reason},
        )
        self.ledger.record_step(step, seq=released_steps)
        self.ledger.hand_off(order.order_id, Handoff.FALLBACK, reason=reason)
        log.warning("order_fell_back", reason=reason)
        return DONE

    def _retry(
        self, order: LeasedOrder, error: str, log: structlog.typing.FilteringBoundLogger
    ) -> Disposition:
        delay = self.retry.delay_s(order.attempts)
        log.warning("order_retry_scheduled", error=error, retry_in_s=round(delay, 3))
        return Disposition(done=False, retry_in_s=delay, error=error)

    def _record_steps(self, result: ExecutionResult) -> None:
        self.ledger.record_steps(_numbered(result))


def _log_routed(log: structlog.typing.FilteringBoundLogger, routed: Decision | None) -> None:
    """``order_routed`` for a decision pinned now whose run did not start after all."""
    if routed is not None:
        log.info("order_routed", **routed.to_dict())


def _log_run_started(
    log: structlog.typing.FilteringBoundLogger, routed: Decision | None, *, dry_run: bool
) -> None:
    """The run's start: ``instant_run_started``, or, for a decision pinned just now, one
    ``order_routed`` line with the decision and ``run_started`` (both facts, one line)."""
    if routed is None:
        log.info("instant_run_started", dry_run=dry_run)
    else:
        log.info("order_routed", **routed.to_dict(), run_started=True, dry_run=dry_run)


def _numbered(result: ExecutionResult) -> list[tuple[StepResult, int]]:
    """Each step with its repeat number within its name and mode (the ledger's ``seq``)."""
    seen: dict[tuple[str, bool], int] = {}
    numbered = []
    for step in result.steps:
        key = (step.step, step.dry_run)
        seq = seen.get(key, 0)
        numbered.append((step, seq))
        seen[key] = seq + 1
    return numbered


def _describe(result: ExecutionResult) -> str:
    return ": ".join(part for part in (result.error, result.cause) if part)


def _count(result: ExecutionResult, step: str) -> int:
    return sum(1 for recorded in result.steps if recorded.step == step)
