"""Keep a routing process's threads on one CPU while that CPU has room (``STRANGLER_ROUTING_CPUS``).

A routing process is Python bound by its GIL: its dispatcher workers, feeder, follower
and timers take turns holding one lock. With a second core idle, each turn tends to
wake the next thread there, and the objects it touches move from one core's cache to the
other's. Kept on one core, the turns stay local: on a quiet 2-core host, bench/routing.py
routed an instant order for about three quarters of the CPU, and about a quarter more
orders a second (docs/BENCHMARKS.md, routing). The price is that a pinned process cannot
escape its core when something else needs it, so the tail latency of a busy host would
suffer; that is what :class:`AffinityKeeper` watches for.

``STRANGLER_ROUTING_CPUS`` is ``auto`` (the default), ``off``, or a comma-separated list
of CPU numbers:

- ``auto``: the process starts on one CPU (``serve``'s routing children round-robin over
  the CPUs it may use, highest first, since CPU 0 usually takes the most interrupts; a
  ``strangler worker`` the CPU the kernel started it on), and a keeper thread checks it
  every quarter second. When others use more than a quarter of that CPU, the process
  moves to a CPU at most half busy, or, if there is none, is let run anywhere again, to
  try one CPU later (after 2 s, doubled after each try that did not hold, up to a minute).
- ``off``: the kernel places the threads, as it would without strangler.
- a list: ``serve``'s routing children take its CPUs round-robin (a worker the first),
  and stay there: the operator's placement, not revisited.

With one CPU allowed there is nothing to choose and nothing is pinned.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from strangler.exceptions import ConfigurationError

__all__ = [
    "AUTO",
    "OFF",
    "AffinityKeeper",
    "CpuSample",
    "check_routing_cpus",
    "keep_routing_cpu",
    "read_cpu_sample",
    "set_threads_affinity",
]

AUTO = "auto"
OFF = "off"
WINDOW_S = 0.25
FOREIGN_MAX = 0.25  # others' share of the process's CPU that makes it move
BUSY_MAX = 0.5  # a CPU busier than this is no place to move to
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
_TASKS = Path("/proc/self/task")
_PROC_STAT = Path("/proc/stat")
_SELF_STAT = Path("/proc/self/stat")
_STAT_PROCESSOR_FIELD = 39  # proc(5): "CPU number last executed on"
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal
_IDLE_COLUMNS = (3, 4)  # idle iowait

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """One reading: each CPU's busy and total clock ticks, and this process's CPU time."""

    busy: dict[int, int]
    total: dict[int, int]
    ours_s: float
    at_s: float


def read_cpu_sample() -> CpuSample:
    """Read /proc/stat's per-CPU counters and this process's CPU time (all threads)."""
    busy: dict[int, int] = {}
    total: dict[int, int] = {}
    with _PROC_STAT.open() as stat:
        for line in stat:
            name, _, rest = line.partition(" ")
            if not name.startswith("cpu") or name == "cpu":
                if busy:
                    break  # the per-CPU lines are together, after the total
                continue
            ticks = [int(value) for value in rest.split()]
            cpu = int(name[3:])
            busy[cpu] = sum(ticks[column] for column in _BUSY_COLUMNS)
            total[cpu] = busy[cpu] + sum(ticks[column] for column in _IDLE_COLUMNS)
    return CpuSample(busy, total, time.process_time(), time.monotonic())


def set_threads_affinity(cpus: set[int]) -> None:
    """Let every thread of this process (and the threads they start) run on ``cpus`` only."""
    for task in _TASKS.iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            continue  # a thread that ended since the listing


class AffinityKeeper:
    """Keeps the process on one CPU while others leave it room; see the module's text.

    :meth:`step` is the decision on two readings, a window apart; :meth:`start` runs it
    on a daemon thread. ``apply`` sets the threads' CPUs (``set_threads_affinity``).
    """

    def __init__(
        self,
        allowed: set[int],
        first: int,
        *,
        read: Callable[[], CpuSample] = read_cpu_sample,
        apply: Callable[[set[int]], None] = set_threads_affinity,
    ) -> None:
        self._allowed = set(allowed)
        self._read = read
        self._apply = apply
        self.cpu: int | None = None
        self._retry_s = RETRY_FIRST_S
        self._retry_at_s = 0.0
        self._pinned_at_s = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pin(first, reason="start", at_s=time.monotonic())

    def start(self) -> None:
        """Check every :data:`WINDOW_S` seconds on a daemon thread, until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="routing-affinity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (the threads keep their CPUs)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(WINDOW_S * 4)

    def step(self, before: CpuSample, after: CpuSample) -> None:
        """Move, release or pin the process from what happened between two readings."""
        elapsed = after.at_s - before.at_s
        if elapsed <= 0:
            return
        busy = {
            cpu: (after.busy[cpu] - before.busy[cpu]) / max(after.total[cpu] - before.total[cpu], 1)
            for cpu in self._allowed
            if cpu in before.busy and cpu in after.busy
        }
        if not busy:
            return
        ours = (after.ours_s - before.ours_s) / elapsed
        if self.cpu is None:
            if after.at_s >= self._retry_at_s:
                self._retry(busy, ours, after.at_s)
            return
        foreign = busy.get(self.cpu, 0.0) - ours
        if foreign <= FOREIGN_MAX:
            if after.at_s - self._pinned_at_s > RETRY_MAX_S:
                self._retry_s = RETRY_FIRST_S  # this CPU has held for a while
            return
        room = [cpu for cpu in busy if cpu != self.cpu and busy[cpu] <= BUSY_MAX]
        _log.info(
            "routing_cpu_crowded", cpu=self.cpu, others_share=round(foreign, 2), moves=bool(room)
        )
        if room:
            self._pin(min(room, key=lambda cpu: (busy[cpu], -cpu)), "crowded", after.at_s)
        else:
            self._release(after.at_s)

    def _retry(self, busy: dict[int, float], ours: float, at_s: float) -> None:
        """Pin to the least busy CPU if others leave it room (ours counted as spread)."""
        cpu = min(busy, key=lambda cpu: (busy[cpu], -cpu))
        if busy[cpu] - ours / len(busy) <= BUSY_MAX:
            self._pin(cpu, "retry", at_s)
        else:
            self._retry_at_s = at_s + self._retry_s

    def _run(self) -> None:
        before = self._read()
        while not self._stopping.wait(WINDOW_S):
            after = self._read()
            self.step(before, after)
            before = after

    def _pin(self, cpu: int, reason: str, at_s: float) -> None:
        self._apply({cpu})
        self.cpu = cpu
        self._pinned_at_s = at_s
        _log.info("routing_process_pinned", cpu=cpu, reason=reason)

    def _release(self, at_s: float) -> None:
        self._apply(self._allowed)
        self.cpu = None
        self._retry_at_s = at_s + self._retry_s
        self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
        _log.info("routing_process_released", retry_in_s=self._retry_at_s - at_s)


def keep_routing_cpu(setting: str, index: int | None = None) -> AffinityKeeper | None:
    """Place this routing process's threads as ``setting`` says (see the module's text).

    ``setting`` is ``Settings.routing_cpus`` (its form already checked); ``index`` is the
    process's place among ``serve``'s routing children, None for a standalone worker.
    Returns the started keeper under ``auto`` (stop it when the process stops), else
    None. Raises ConfigurationError when a listed CPU is not one this process may use.
    """
    allowed = check_routing_cpus(setting)
    if setting == OFF or len(allowed) < 2:
        return None
    if setting == AUTO:
        choices = sorted(allowed, reverse=True)
        first = _current_cpu(allowed) if index is None else choices[index % len(choices)]
        keeper = AffinityKeeper(allowed, first, apply=set_threads_affinity)
        keeper.start()
        return keeper
    listed = [int(item) for item in setting.split(",")]
    cpu = listed[(index or 0) % len(listed)]
    set_threads_affinity({cpu})
    _log.info("routing_process_pinned", cpu=cpu, reason="setting")
    return None


def check_routing_cpus(setting: str) -> set[int]:
    """The CPUs this process may use; ConfigurationError if ``setting`` lists another."""
    allowed = os.sched_getaffinity(0)
    if setting in (AUTO, OFF):
        return allowed
    outside = [cpu for cpu in map(int, setting.split(",")) if cpu not in allowed]
    if outside:
        raise ConfigurationError(
            f"STRANGLER_ROUTING_CPUS lists CPU {outside[0]}, but this process may only use "
            f"{', '.join(map(str, sorted(allowed)))}"
        )
    return allowed


def _current_cpu(allowed: set[int]) -> int:
    """The CPU this process last ran on (where the kernel placed it)."""
    fields = _SELF_STAT.read_text().rpartition(")")[2].split()
    cpu = int(fields[_STAT_PROCESSOR_FIELD - 3])
    return cpu if cpu in allowed else max(allowed)
