"""Keep a busy routing process's threads on one CPU (``STRANGLER_ROUTING_CPUS``).

A routing process is Python bound by its GIL: its dispatcher workers, feeder, follower
and timers take turns holding one lock. With a second core idle, each turn tends to
wake the next thread there, and the objects it touches move from one core's cache to the
other's. Kept on one core, the turns stay local: on a quiet 2-core host, a routing
process at full load routed an instant order for about four fifths of the CPU and about
a fifth more orders a second (bench/routing.py, docs/BENCHMARKS.md, routing). The price
is that a pinned process cannot escape its core when something else on the host needs
it at that moment: at light load, beside a busy neighbour, good orders' tail latency
grew (the head-of-line bench). So the keeper pins only a process that is busy, where the
CPU matters, and lets go of one that is not, or whose core others crowd.

``STRANGLER_ROUTING_CPUS`` is ``auto`` (the default), ``off``, or a comma-separated list
of CPU numbers:

- ``auto``: a keeper thread reads ``/proc/stat`` and the process's CPU time every tenth
  of a second. Once the process has used at least 70 % of a core over the last second, it
  is kept on the least busy CPU that others leave room on (at most half busy with theirs,
  over the last 0.4 s); on a host where the rest use under a fifth of a core, once it has
  done so over the last 0.2 s (nobody else's bursts to escape from: a routing process
  whose busy moments come with its legacy app's or intake's, as on a shared host, is
  judged over the second). Once it has used under 30 % over a second, it runs anywhere
  again. When others use more than a quarter of its CPU (over 0.4 s), it moves to a CPU
  at most half busy, or, with none, runs anywhere and is not kept again for 2 s (doubled
  after each such crowding, up to a minute; reset once a CPU has held for a minute).
- ``off``: the kernel places the threads, as it would without strangler.
- a list: ``serve``'s routing children take its CPUs round-robin (a worker the first),
  from the start and for good: the operator's placement, for hosts whose CPUs are laid
  out by hand.

With one CPU allowed there is nothing to choose and nothing is pinned.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
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
WINDOW_S = 0.1
SPAN_WINDOWS = 4  # others' use of the CPUs is judged over this many windows
BUSY_WINDOWS = 10  # the process's own use is judged over this many
QUICK_WINDOWS = 2  # ... or over this many, when the rest of the host is quiet
QUIET_OTHERS = 0.2  # cores the rest of the host uses, at most, for the quick judgement
BUSY_SHARE = 0.7  # of one core, over BUSY_WINDOWS: the process is kept on one CPU
IDLE_SHARE = 0.3  # under it, over BUSY_WINDOWS: it runs anywhere again
FOREIGN_MAX = 0.25  # others' share of the process's CPU that makes it move
BUSY_MAX = 0.5  # a CPU others keep busier than this is no place to go to
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
_TASKS = Path("/proc/self/task")
_PROC_STAT = Path("/proc/stat")
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
    """Keeps a busy process on one CPU while others leave it room; see the module's text.

    :meth:`observe` takes one reading a window and decides; :meth:`start` runs it on a
    daemon thread. ``apply`` sets the threads' CPUs (``set_threads_affinity``).
    """

    def __init__(
        self,
        allowed: set[int],
        *,
        read: Callable[[], CpuSample] = read_cpu_sample,
        apply: Callable[[set[int]], None] = set_threads_affinity,
    ) -> None:
        self._allowed = set(allowed)
        self._read = read
        self._apply = apply
        self.cpu: int | None = None
        self._samples: deque[CpuSample] = deque(maxlen=BUSY_WINDOWS + 1)
        self._retry_s = RETRY_FIRST_S
        self._retry_at_s = 0.0
        self._pinned_at_s = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check every :data:`WINDOW_S` seconds on a daemon thread, until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="routing-affinity", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking and let the threads run anywhere again."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(WINDOW_S * 4)
        if self.cpu is not None:
            self._apply(self._allowed)
            self.cpu = None

    def observe(self, sample: CpuSample) -> None:
        """Pin, move or release the process from the readings so far, ``sample`` the last.

        Its own use is judged over the last :data:`BUSY_WINDOWS` (a second: bursts of a
        lightly loaded process do not pin it), or over the last :data:`QUICK_WINDOWS` while
        the rest of the host uses under :data:`QUIET_OTHERS` of a core; others' use of the
        CPUs over the last :data:`SPAN_WINDOWS` (/proc/stat counts 10 ms ticks: one
        window is too coarse).
        """
        self._samples.append(sample)
        if len(self._samples) <= QUICK_WINDOWS:
            return
        recent = self._samples[max(0, len(self._samples) - 1 - SPAN_WINDOWS)]
        ours_span = _ours(recent, sample)
        busy = _busy(recent, sample, self._allowed)
        if ours_span is None or not busy:
            return
        if self.cpu is None:
            if sample.at_s >= self._retry_at_s and self._busy_enough(sample):
                self._pin_if_room(busy, ours_span, sample.at_s)
            return
        ours = _ours(self._samples[0], sample)
        foreign = busy.get(self.cpu, 0.0) - ours_span
        if foreign > FOREIGN_MAX:
            self._crowded(busy, foreign, sample.at_s)
        elif (
            ours is not None
            and ours < IDLE_SHARE
            and sample.at_s - self._pinned_at_s >= BUSY_WINDOWS * WINDOW_S
        ):
            self._release("idle", sample.at_s)
        elif sample.at_s - self._pinned_at_s > RETRY_MAX_S:
            self._retry_s = RETRY_FIRST_S  # this CPU has held for a while

    def _busy_enough(self, sample: CpuSample) -> bool:
        """Busy over the last second, or over the last few windows on an otherwise quiet host."""
        if len(self._samples) > BUSY_WINDOWS:
            ours = _ours(self._samples[0], sample)
            if ours is not None and ours >= BUSY_SHARE:
                return True
        quick = self._samples[-1 - QUICK_WINDOWS]
        ours_quick = _ours(quick, sample)
        if ours_quick is None or ours_quick < BUSY_SHARE:
            return False
        others = sum(_busy(quick, sample, self._allowed).values()) - ours_quick
        return others < QUIET_OTHERS

    def _pin_if_room(self, busy: dict[int, float], ours: float, at_s: float) -> None:
        """Pin to the least busy CPU if others leave it room (ours counted as spread)."""
        cpu = _least_busy(busy, busy)
        if busy[cpu] - ours / len(busy) <= BUSY_MAX:
            self._pin(cpu, "busy", at_s)

    def _crowded(self, busy: dict[int, float], foreign: float, at_s: float) -> None:
        room = [cpu for cpu in busy if cpu != self.cpu and busy[cpu] <= BUSY_MAX]
        _log.info(
            "routing_cpu_crowded", cpu=self.cpu, others_share=round(foreign, 2), moves=bool(room)
        )
        if room:
            self._pin(_least_busy(busy, room), "crowded", at_s)
            return
        self._release("crowded", at_s)
        self._retry_at_s = at_s + self._retry_s
        self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)

    def _run(self) -> None:
        self.observe(self._read())
        while not self._stopping.wait(WINDOW_S):
            self.observe(self._read())

    def _pin(self, cpu: int, reason: str, at_s: float) -> None:
        self._apply({cpu})
        self.cpu = cpu
        self._pinned_at_s = at_s
        _log.info("routing_process_pinned", cpu=cpu, reason=reason)

    def _release(self, reason: str, at_s: float) -> None:
        self._apply(self._allowed)
        self.cpu = None
        _log.info(
            "routing_process_released", reason=reason, pinned_s=round(at_s - self._pinned_at_s, 1)
        )


def _ours(before: CpuSample, after: CpuSample) -> float | None:
    """The process's CPU between two readings, in cores (None: no time passed)."""
    elapsed = after.at_s - before.at_s
    return (after.ours_s - before.ours_s) / elapsed if elapsed > 0 else None


def _least_busy(busy: dict[int, float], among: Iterable[int]) -> int:
    """The least busy CPU of ``among``; of equals the highest (CPU 0 takes most interrupts)."""
    return min(among, key=lambda cpu: (busy[cpu], -cpu))


def _busy(before: CpuSample, after: CpuSample, cpus: set[int]) -> dict[int, float]:
    """Each CPU's busy share between two readings (the CPUs both readings have)."""
    return {
        cpu: (after.busy[cpu] - before.busy[cpu]) / max(after.total[cpu] - before.total[cpu], 1)
        for cpu in cpus
        if cpu in before.busy and cpu in after.busy
    }


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
        keeper = AffinityKeeper(allowed, apply=set_threads_affinity)
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
