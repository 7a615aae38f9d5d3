"""The dispatcher: a bounded pool of worker threads taking due orders from the ledger.

One feeder thread claims due orders under leases, renews the leases of the orders it
holds, and hands each order to a worker, which calls :meth:`Router.process` and then
releases the lease as the router says. The claim is offered :meth:`Router.decide_claimed`:
on SQLite it decides and pins the undecided orders in its own commit (see
``SqlLedger.claim_due``), so a worker goes straight to the run, and a legacy-path order,
whose lease the claim released with the pin, is never handed to a worker at all.

The feeder claims in batches: once no more than
``workers`` orders are held it claims enough to hold twice that, so a worker that ends an
order finds the next one waiting, and one claim serves several orders. A worker that
ends an order makes room, but wakes the feeder only when something may be due: not after
a claim came back short (it found every due order) with no :meth:`~LeaseDispatcher.wake`
since, as orders arrive with a wake-up of their own and due retries or other processes'
expired leases are found by the poll. A wake-up heard on a thread of its own (the
intake listener's, on PostgreSQL) may claim on that thread at once
(:meth:`~LeaseDispatcher.claim_now`) rather than wake the feeder to claim: one thread
hand-off less on an order's way to routing. One claim runs at a time. Orders claimed
but not started when the dispatcher stops are given back at once, their claim uncounted.
Started, it resumes every order that needs processing and whose lease is free or
expired, so a process that died mid-way loses nothing; several dispatchers (threads,
processes or hosts) may share one ledger, and leases keep each order with one worker at
a time.

An order whose execution waits (a Retry interval) is parked, not held by its worker: the
router returns a :class:`~strangler.routing.router.Parked` disposition, the dispatcher keeps the
order's lease (renewed with the others) and hands the order back to a worker when the
execution has ended. Parked orders do not count against the claims (up to
``max_parked`` of them), so a dependency that keeps failing for some orders delays no
other order. A free worker takes a fresh order before a resumed one (whose customer
already waited out a Retry interval), and resumed orders hold at most all workers but one
at a time (see :mod:`~strangler.routing.jobs`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol

import structlog

from strangler.backoff import Backoff
from strangler.exceptions import LedgerError
from strangler.ledger.exceptions import LeaseLost
from strangler.ledger.records import LeasedOrder, default_owner, utc_now
from strangler.orders import Decision, Route
from strangler.routing.jobs import JobQueue
from strangler.routing.router import Disposition, Lease, Parked, Router

__all__ = ["LeaseDispatcher", "LeaseQueue"]

_log = structlog.get_logger()
_MAX_FEED_BACKOFF_S = 30.0


class LeaseQueue(Protocol):
    """The ledger as a queue of due orders under leases (SqlLedger in production)."""

    def claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        decide: Callable[[LeasedOrder], Decision] | None = None,
    ) -> list[LeasedOrder]:
        """Lease up to ``limit`` orders that need processing and nobody holds; with
        ``decide``, the claim may also pin the undecided ones (``pinned_now``)."""
        ...

    def renew_leases(
        self, owner: str, order_ids: Sequence[str], *, lease_seconds: float
    ) -> set[str]:
        """Extend ``owner``'s leases; returns the order_ids it still holds."""
        ...

    def release_lease(
        self,
        order_id: str,
        owner: str,
        *,
        done: bool,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Give up ``owner``'s lease: the order is done, or due again at ``retry_at``."""
        ...

    def return_unstarted(self, owner: str, order_ids: Sequence[str]) -> int:
        """Give back claims on orders not started: due again at once, attempts uncounted."""
        ...


class _Resume(NamedTuple):
    """A parked order whose execution has ended, for a worker to finish."""

    order: LeasedOrder
    lease: Lease
    resume: Callable[[], Disposition]


class LeaseDispatcher:
    """Processes due orders from the ledger on ``workers`` threads, under leases.

    ``lease_seconds`` is how long a claim holds without renewal (renewed every third of
    it while an order is processed or parked); ``poll_interval_s`` bounds how long a due
    retry or another process's order waits when nobody calls :meth:`wake`;
    ``max_parked`` bounds how many parked orders are held without counting against the
    claims (beyond it they count as if a worker held them).
    """

    def __init__(
        self,
        router: Router,
        ledger: LeaseQueue,
        *,
        workers: int = 4,
        lease_seconds: float = 30.0,
        poll_interval_s: float = 1.0,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_parked: int = 1_000,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a dispatcher needs at least 1 worker, got {workers}")
        if max_parked < 0:
            raise ValueError(f"max_parked must be 0 or more, got {max_parked}")
        if lease_seconds <= 0 or poll_interval_s <= 0:
            raise ValueError(
                "lease_seconds and poll_interval_s must be positive, got "
                f"{lease_seconds} and {poll_interval_s}"
            )
        self.router = router
        self.ledger = ledger
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.poll_interval_s = poll_interval_s
        self.owner = owner or default_owner()
        self.max_parked = max_parked
        self._clock = clock
        self._parked = 0
        self._wake = threading.Event()
        # False from a claim that came back short until the next wake(): nothing known due.
        self._maybe_due = True
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # One claim at a time: the feeder's, or a wake-up's (claim_now).
        self._claiming = threading.Lock()
        self._in_flight: dict[str, Lease] = {}
        self._jobs: JobQueue[LeasedOrder, _Resume] = JobQueue(
            max_resumed=max(1, workers - 1), fresh_in_a_row=workers
        )
        self._threads: list[threading.Thread] = []
        self._feeder: threading.Thread | None = None

    @property
    def in_flight(self) -> int:
        """How many orders this dispatcher holds: processed, parked or waiting for a worker."""
        with self._lock:
            return len(self._in_flight)

    @property
    def parked(self) -> int:
        """How many of them are parked (their execution waits, no worker holds them)."""
        with self._lock:
            return self._parked

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun: no order is claimed or started after it."""
        return self._stopping.is_set()

    def wake(self) -> None:
        """Look for due orders now (called after each new intake)."""
        self._maybe_due = True
        self._wake.set()

    def claim_now(self) -> None:
        """Claim due orders on the calling thread now, as :meth:`wake` would have the feeder do.

        For a thread that hears of new orders and has nothing else to do (the intake
        listener): it saves the hand-off to the feeder. Falls
        back to :meth:`wake` when the dispatcher is not running, when a claim is under way
        (the feeder claims again after it), or when the claim fails (the feeder retries it
        with its backoff and logs it). Never raises.
        """
        self._maybe_due = True
        if self._feeder is None or self.stopping or not self._claiming.acquire(blocking=False):
            self._wake.set()
            return
        try:
            more_due = self._claim()
        except Exception as exc:  # the feeder claims instead, and logs the failure there
            _log.info("dispatcher_claim_now_failed", error=str(exc))
            more_due = True
        finally:
            self._claiming.release()
        if more_due:
            self._maybe_due = True
            self._wake.set()

    def start(self) -> None:
        """Start the workers and the feeder; the first claim resumes unfinished orders."""
        if self._feeder is not None:
            raise RuntimeError("this dispatcher was started already; build a new one")
        self._threads = [
            threading.Thread(target=self._work, name=f"strangler-worker-{n}", daemon=True)
            for n in range(self.workers)
        ]
        self._feeder = threading.Thread(target=self._feed, name="strangler-feeder", daemon=True)
        for thread in (*self._threads, self._feeder):
            thread.start()
        _log.info("dispatcher_started", owner=self.owner, workers=self.workers)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop taking orders; wait up to ``timeout`` seconds for those in flight.

        Leases stay renewed while waiting. Returns False when some orders were still in
        flight at the deadline: their leases are then left to expire (after
        ``lease_seconds``), when another worker resumes them; releasing them early would
        let a second worker start while this one may still be running the order.
        """
        if self._feeder is None:
            return True
        with self._lock:  # a claim registers its orders before this, or gives them back
            self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        self._feeder.join(timeout)
        self._return_queued()
        next_renewal = time.monotonic()
        while self.in_flight and time.monotonic() < deadline:
            if time.monotonic() >= next_renewal:
                self._renew_quietly()
                next_renewal = time.monotonic() + self.lease_seconds / 3
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        for _ in self._threads:
            self._jobs.put_stop()
        with self._lock:
            left = sorted(self._in_flight)
        if left:
            _log.warning("dispatcher_stopped_with_orders_in_flight", owner=self.owner, orders=left)
        else:
            _log.info("dispatcher_stopped", owner=self.owner)
        return not left

    # -- the feeder -----------------------------------------------------------------------

    def _feed(self) -> None:
        backoff = Backoff(self.poll_interval_s, _MAX_FEED_BACKOFF_S)
        failures = 0
        renew_every = self.lease_seconds / 3
        next_renewal = time.monotonic() + renew_every
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_renewal:
                    self._renew_due_leases()
                    next_renewal = time.monotonic() + renew_every
                with self._claiming:
                    more_due = self._claim()
            except Exception as exc:  # the feeder outlives the ledger being down, or a bug
                self._maybe_due = True
                failures += 1
                delay = backoff.delay_s(failures)
                if isinstance(exc, LedgerError):
                    _log.error("dispatcher_ledger_error", error=str(exc), retry_in_s=delay)
                else:
                    _log.exception("dispatcher_feed_crashed", retry_in_s=delay)
                self._stopping.wait(delay)
                continue
            failures = 0
            if more_due and self._room() > 0:
                continue
            wait = min(self.poll_interval_s, max(0.0, next_renewal - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()

    def _room(self) -> int:
        """How many orders to claim now: none while more than ``workers`` are held (parked
        orders aside, up to ``max_parked``)."""
        with self._lock:
            held = self._held()
        return 2 * self.workers - held if held <= self.workers else 0

    def _held(self) -> int:
        """Orders held that count against the claims (call under the lock)."""
        return len(self._in_flight) - min(self._parked, self.max_parked)

    def _claim(self) -> bool:
        """Claim what there is room for; True when the room was filled (more may be due).

        A claim that came back short found every due order: claiming again at once would
        find none, so the feeder waits for the next wake-up instead, and workers ending
        orders do not wake it until one comes (``_maybe_due``).
        """
        room = self._room()
        if room <= 0 or self._stopping.is_set():
            return False
        # Cleared before the claim reads the ledger: an order written after that read
        # comes with a wake() that sets it again.
        self._maybe_due = False
        orders = self.ledger.claim_due(
            self.owner,
            limit=room,
            lease_seconds=self.lease_seconds,
            decide=self.router.decide_claimed,
        )
        claimed = len(orders)
        # Pinned to legacy by the claim, their leases released with the pin: nothing to run.
        routed = [order for order in orders if _released_by_claim(order)]
        if routed:
            orders = [order for order in orders if not _released_by_claim(order)]
            for order in routed:
                self.router.routed_at_claim(order)
        with self._lock:
            # An order held here whose lease ran out before a renewal (a stalled process)
            # comes back to its owner: it is being processed or parked, not started again.
            orders = [order for order in orders if order.order_id not in self._in_flight]
            stopping = self._stopping.is_set()
            if not stopping:
                # Queued under the lock, so that a stop that begins next finds them queued.
                for order in orders:
                    self._in_flight[order.order_id] = Lease(order.order_id, self.owner)
                    self._jobs.put_fresh(order)
        if stopping:
            # The claim outlasted the stop's wait for the feeder: no worker may be left to
            # take these, so they go back at once rather than stay leased until expiry.
            self._return_to_ledger([order.order_id for order in orders])
            return False
        if claimed < room:
            return False
        self._maybe_due = True
        return True

    def _return_queued(self) -> None:
        """Give back the orders claimed but not taken by a worker yet (stopping); resumed
        ones stay queued (started already: a worker finishes them)."""
        self._give_back([order.order_id for order in self._jobs.take_fresh()])

    def _give_back(self, order_ids: list[str]) -> None:
        """Return claimed orders no worker started (stopping): due again, claims uncounted."""
        if not order_ids:
            return
        self._return_to_ledger(order_ids)
        with self._lock:
            for order_id in order_ids:
                del self._in_flight[order_id]

    def _return_to_ledger(self, order_ids: list[str]) -> None:
        if not order_ids:
            return
        try:
            self.ledger.return_unstarted(self.owner, order_ids)
        except LedgerError as exc:
            # Their leases expire on their own, and another worker takes them then.
            _log.error("dispatcher_ledger_error", error=str(exc), orders=order_ids)
        _log.info("dispatcher_returned_unstarted", owner=self.owner, orders=order_ids)

    def _renew_quietly(self) -> None:
        try:
            self._renew_due_leases()
        except LedgerError as exc:
            _log.error("dispatcher_ledger_error", error=str(exc))

    def _renew_due_leases(self) -> None:
        with self._lock:
            leases = {k: v for k, v in self._in_flight.items() if not v.released.is_set()}
        if not leases:
            return
        held = self.ledger.renew_leases(self.owner, list(leases), lease_seconds=self.lease_seconds)
        for order_id, lease in leases.items():
            # A lease released while renewing is not held any more, but it was not lost.
            if order_id in held or lease.released.is_set() or lease.lost.is_set():
                continue
            lease.lost.set()
            _log.warning("lease_lost", order_id=order_id, owner=self.owner)

    # -- the workers ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            resumed = False
            if isinstance(job, _Resume):
                resumed = True
                order, lease, step = job
                with self._lock:
                    self._parked -= 1
            else:
                order = job
                if self._stopping.is_set():
                    self._give_back([order.order_id])
                    continue
                with self._lock:
                    lease = self._in_flight[order.order_id]
                step = partial(self.router.process, order, lease)
            parked = False
            try:
                parked = self._process(order, lease, step)
            finally:
                with self._lock:
                    if not parked:
                        del self._in_flight[order.order_id]
                    claim_more = self._maybe_due and self._held() <= self.workers
                if resumed:
                    self._jobs.resumed_done()
                if claim_more:
                    self._wake.set()

    def _process(self, order: LeasedOrder, lease: Lease, step: Callable[[], Disposition]) -> bool:
        """Take the order a step further and release its lease as told; True if parked."""
        try:
            disposition = step()
        except LeaseLost:
            self._order_log(order).warning("order_abandoned_lease_lost")
            return False
        except Exception as exc:  # a worker survives any one order's failure
            self._order_log(order).exception("order_processing_crashed")
            disposition = Disposition(
                done=False,
                retry_in_s=self.router.retry.delay_s(order.attempts),
                error=f"processing crashed: {type(exc).__name__}: {exc}",
            )
        if disposition.parked is not None:
            self._park(order, lease, disposition.parked)
            return True
        lease.released.set()
        if not disposition.released:
            self._release(order, disposition)
            if not disposition.done and disposition.retry_in_s <= 0:
                self._maybe_due = True  # due again at once: claim it without waiting a poll
        return False

    def _park(self, order: LeasedOrder, lease: Lease, parked: Parked) -> None:
        """Keep the order's lease while its execution waits; a worker finishes it after."""
        with self._lock:
            self._parked += 1
        job = _Resume(order, lease, parked.resume)
        parked.until.add_done_callback(lambda _ended: self._jobs.put_resumed(job))

    def _order_log(self, order: LeasedOrder) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to the order (bound only when a line is written: most write none)."""
        bound: structlog.typing.FilteringBoundLogger = _log.bind(
            order_id=order.order_id, owner=self.owner, attempt=order.attempts
        )
        return bound

    def _release(self, order: LeasedOrder, disposition: Disposition) -> None:
        retry_at = self._clock() + timedelta(seconds=disposition.retry_in_s)
        try:
            released = self.ledger.release_lease(
                order.order_id,
                self.owner,
                done=disposition.done,
                retry_at=retry_at,
                error=disposition.error,
            )
        except LedgerError as exc:
            # The lease expires on its own and another worker resumes the order.
            self._order_log(order).error("lease_release_failed", error=str(exc))
            return
        if not released:
            self._order_log(order).warning("lease_lost_before_release")


def _released_by_claim(order: LeasedOrder) -> bool:
    """True for an order the claim pinned to legacy, releasing its lease with the pin."""
    return order.pinned_now and order.decision is not None and order.decision.path is Route.LEGACY
