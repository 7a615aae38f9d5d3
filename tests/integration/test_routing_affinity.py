"""A routing process kept on one CPU moves off it when another process crowds that CPU.

Real processes: a routing process's keeper (``STRANGLER_ROUTING_CPUS=auto``) and a busy
loop pinned to the keeper's CPU. The keeper must not stay where others leave it no room.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 CPUs to move between"
)

KEEPER = """
import sys
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from strangler.routing.affinity import keep_routing_cpu
keeper = keep_routing_cpu("auto", 0)
print(keeper.cpu, flush=True)
sys.stdin.read()
keeper.stop()
"""
HOG = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
while True:
    pass
"""


@contextmanager
def running(*command: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            yield process
        finally:
            process.kill()


def test_a_crowded_cpu_is_left_within_seconds() -> None:
    with running(KEEPER) as keeper:
        assert keeper.stdout is not None
        cpu = int(keeper.stdout.readline())
        assert cpu == max(os.sched_getaffinity(0))  # auto: serve's first child, highest
        with running(HOG, str(cpu)):
            wait_until(
                lambda: os.sched_getaffinity(keeper.pid) != {cpu},
                10,
                f"the routing process to leave CPU {cpu} to the busy loop",
                detail=lambda: os.sched_getaffinity(keeper.pid),
            )
