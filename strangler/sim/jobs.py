"""The three batch jobs and the scheduler that runs them every ``interval_s`` seconds.

A run takes up to ``batch_size`` batch-mode orders in the job's status, oldest first,
and processes each in its own transaction (so a claim can slip in between; the job
then skips that order). An order whose step errs stays where it is for the next run.

On each tick the jobs run last stage first (fulfilment, payment, fraud scan), so an
order moves one stage per tick: pending to fulfilled takes about three intervals, as in
the real system.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from strangler.sim.engine import OrderBook
from strangler.sim.exceptions import ApiError
from strangler.sim.faults import FaultInjector
from strangler.sim.model import JOBS, format_ts

__all__ = ["TICK_ORDER", "JobRunner", "Scheduler"]

TICK_ORDER = ("fulfillment", "payment_authorization", "fraud_scan")
RECENT_RUNS = 10

_log = structlog.get_logger()


class JobRunner:
    """Runs one job at a time per job name; manual and scheduled runs share the lock."""

    def __init__(
        self,
        book: OrderBook,
        faults: FaultInjector,
        *,
        batch_size: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self._book = book
        self._faults = faults
        self._now = now
        self._locks = {name: threading.Lock() for name in JOBS}
        self._running: set[str] = set()

    def run(self, job: str, *, trigger: str, wait_s: float = 30.0) -> dict[str, Any]:
        """Run ``job`` now and return its JobRun; a 409 ApiError if it stays busy ``wait_s``."""
        step = JOBS[job]
        lock = self._locks[job]
        if not lock.acquire(timeout=wait_s):
            raise ApiError(409, "job_running", f"job {job!r} is still running; try again later")
        try:
            self._running.add(job)
            return self._run_locked(job, step.name, trigger)
        finally:
            self._running.discard(job)
            lock.release()

    def is_running(self, job: str) -> bool:
        """True while a run of ``job`` is in progress."""
        return job in self._running

    def recent_runs(self, job: str) -> list[dict[str, Any]]:
        """The job's last runs, newest first."""
        return self._book.store.job_runs(job, RECENT_RUNS)

    def _run_locked(self, job: str, step_name: str, trigger: str) -> dict[str, Any]:
        started = self._now()
        order_ids = self._book.store.queue(JOBS[job].from_status, self.batch_size)
        counts: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for order_id in order_ids:
            self._faults.slow_job_delay()
            result = self._book.batch_step(order_id, step_name)
            counts[result.outcome] += 1
            if result.decision is not None:
                outcomes[result.decision] += 1
        run = {
            "job": job,
            "trigger": trigger,
            "started_at": format_ts(started),
            "finished_at": format_ts(self._now()),
            "selected": len(order_ids),
            "processed": counts["processed"],
            "skipped": counts["skipped"],
            "errors": counts["error"] + counts["failed"],
            "failed": counts["failed"],
            "outcomes": dict(outcomes),
        }
        run_id = self._book.store.add_job_run(job, run)
        if order_ids:
            _log.info("job_run", run_id=run_id, **run)
        return {"run_id": run_id, **run}


class Scheduler:
    """A daemon thread that runs every job each ``interval_s`` seconds until stopped."""

    def __init__(
        self,
        runner: JobRunner,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._runner = runner
        self._clock = clock
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_tick: float | None = None

    @property
    def running(self) -> bool:
        """True while the scheduler thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def next_run_at(self) -> datetime | None:
        """When the jobs run next (None when the scheduler is not running)."""
        if self._next_tick is None or not self.running:
            return None
        return self._now() + timedelta(seconds=max(0.0, self._next_tick - self._clock()))

    def start(self) -> None:
        """Start the thread; the first tick is one interval from now."""
        if self.running:
            return
        self._stop.clear()
        self._next_tick = self._clock() + self.interval_s
        self._thread = threading.Thread(target=self._loop, name="legacy-sim-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the job in progress; waits up to ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while self._next_tick is not None and not self._stop.wait(
            max(0.0, self._next_tick - self._clock())
        ):
            self.tick()
            missed = max(0, int((self._clock() - self._next_tick) // self.interval_s))
            self._next_tick += self.interval_s * (missed + 1)

    def tick(self) -> None:
        """Run every job once, last stage first; a job that breaks is logged, not fatal."""
        for job in TICK_ORDER:
            if self._stop.is_set():
                return
            try:
                self._runner.run(job, trigger="schedule")
            except Exception:
                _log.exception("job_run_crashed", job=job)
