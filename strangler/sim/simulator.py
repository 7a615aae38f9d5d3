"""The simulator's parts wired together: store, order book, faults, jobs, scheduler."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from strangler.sim.config import SimConfig
from strangler.sim.engine import OrderBook
from strangler.sim.faults import FaultInjector
from strangler.sim.jobs import JobRunner, Scheduler
from strangler.sim.model import JOBS, format_ts
from strangler.sim.store import SimStore

__all__ = ["Simulator"]


class Simulator:
    """One legacy app: owns the database and the scheduler thread (start/stop)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.store = SimStore(config.db_path)
        self.book = OrderBook(self.store, config.rules)
        self.faults = FaultInjector(config.faults, seed=config.seed)
        self.jobs = JobRunner(self.book, self.faults, batch_size=config.batch_size)
        self.scheduler = Scheduler(self.jobs, config.job_interval_s)

    def start(self) -> None:
        """Start the scheduler (when the config wants one)."""
        if self.config.scheduler:
            self.scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler, let held requests go, close the database."""
        self.scheduler.stop()
        self.faults.close()
        self.store.close()

    def job_infos(self) -> list[dict[str, Any]]:
        """The JobInfo objects of ``GET /jobs``."""
        next_run = self.scheduler.next_run_at()
        infos = []
        for name, step in JOBS.items():
            runs = self.jobs.recent_runs(name)
            infos.append(
                {
                    "name": name,
                    "step": step.name,
                    "from_status": step.from_status,
                    "interval_s": self.config.job_interval_s,
                    "batch_size": self.config.batch_size,
                    "scheduled": self.scheduler.running,
                    "next_run_at": _ts(next_run),
                    "running": self.jobs.is_running(name),
                    "last_run": runs[0] if runs else None,
                    "recent_runs": runs,
                }
            )
        return infos


def _ts(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment is not None else None
