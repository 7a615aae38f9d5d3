"""A busy routing process is kept on one CPU, and moves off it when another process
crowds that CPU.

Real processes: a busy process with a routing process's keeper
(``STRANGLER_ROUTING_CPUS=auto``), then a busy loop pinned to the CPU it was kept on.
The keeper must not stay where others leave it no room.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from strangler.routing.affinity import CpuSample, read_cpu_sample
from tests.helpers import wait_until

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 CPUs to move between"
)

PIN_WITHIN_S = 15
# The keeper pins only where others leave room: with others on more than this many
# cores of two, no CPU is at most half busy with theirs.
NO_ROOM_CORES = 0.9
KEEPER = """
import sys, threading, time
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from strangler.routing.affinity import keep_routing_cpu

def spin():
    while True:
        pass

threading.Thread(target=spin, daemon=True).start()
keeper = keep_routing_cpu("auto", 0)
while keeper.cpu is None:
    time.sleep(0.05)
print(keeper.cpu, flush=True)
sys.stdin.read()
"""
HOG = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
while True:
    pass
"""


def others_cores(before: CpuSample, after: CpuSample, pid: int) -> float:
    """How many cores the host's other processes kept busy between two readings."""
    elapsed = after.at_s - before.at_s
    ticks = sum(after.total.values()) - sum(before.total.values())
    busy = (sum(after.busy.values()) - sum(before.busy.values())) / ticks * len(after.busy)
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ours_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return busy - ours_s / elapsed


@contextmanager
def running(*command: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            yield process
        finally:
            process.kill()


def test_a_busy_process_is_kept_on_one_cpu_and_leaves_it_when_crowded() -> None:
    with running(KEEPER) as keeper:
        assert keeper.stdout is not None
        # A line once it is kept on a CPU: it is busy (a spinning thread).
        before = read_cpu_sample()
        if not select.select([keeper.stdout], [], [], PIN_WITHIN_S)[0]:
            others = others_cores(before, read_cpu_sample(), keeper.pid)
            if others > NO_ROOM_CORES:
                pytest.skip(f"other processes kept {others:.1f} cores busy: no CPU with room")
            pytest.fail(f"a busy process was not kept on one CPU in {PIN_WITHIN_S}s")
        cpu = int(keeper.stdout.readline())
        assert cpu in os.sched_getaffinity(0)
        with running(HOG, str(cpu)):
            wait_until(
                lambda: os.sched_getaffinity(keeper.pid) != {cpu},
                10,
                f"the routing process to leave CPU {cpu} to the busy loop",
                detail=lambda: os.sched_getaffinity(keeper.pid),
            )
