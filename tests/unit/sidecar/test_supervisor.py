"""How ``serve``'s children start: no stop signal lost, no child outliving its supervisor.

Each test runs a stand-in supervisor in a process of its own (its signal handlers and
its death must not touch the test runner), which forks a child as ``serve`` does.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import time

from strangler.sidecar import supervisor

_CHILD_LIVES_S = 30


def _orphaned(supervisor_pid: int, report_fd: int) -> None:
    """A child that sets itself up only once its supervisor is gone."""
    while os.getppid() == supervisor_pid:
        time.sleep(0.01)
    os.write(report_fd, f"{os.getpid()}\n".encode())
    supervisor._child_setup(supervisor_pid)
    time.sleep(_CHILD_LIVES_S)


def _child_then_die(report_fd: int) -> None:
    """A supervisor that forks a child as serve does, then dies before the child is set up."""
    supervisor._forked("orphan", _orphaned, report_fd, grace_s=1.0)
    os._exit(0)


def test_a_child_set_up_after_its_supervisor_died_stops() -> None:
    """A child whose supervisor died before it asked for the death signal stops by itself."""
    read_fd, write_fd = os.pipe()
    middle = multiprocessing.get_context("fork").Process(target=_child_then_die, args=(write_fd,))
    middle.start()
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        child = int(pipe.readline())
        # The pipe ends when the child, its last writer, has ended.
        ended = bool(select.select([pipe], [], [], 10)[0]) and pipe.read() == b""
    middle.join(10)
    if not ended:
        os.kill(child, signal.SIGKILL)
    assert ended


def _set_up_when_told(supervisor_pid: int, go_fd: int) -> None:
    """A child that sets itself up only when told to."""
    os.read(go_fd, 1)
    supervisor._child_setup(supervisor_pid)
    time.sleep(_CHILD_LIVES_S)


def _child_signalled_early() -> None:
    """A supervisor with a SIGTERM handler whose child gets SIGTERM before it is set up."""
    signal.signal(signal.SIGTERM, lambda _s, _f: None)  # as serve's request_stop, inherited
    go_read, go_write = os.pipe()
    child = supervisor._forked("early", _set_up_when_told, go_read, grace_s=1.0)
    os.kill(child.pid, signal.SIGTERM)
    os.write(go_write, b"x")
    child.join(_CHILD_LIVES_S + 10)
    os._exit(-(child.exit_code() or 0))


def test_a_sigterm_sent_before_the_child_is_set_up_stops_it() -> None:
    """SIGTERM to a child not yet set up waits, then stops it (no inherited handler takes it)."""
    middle = multiprocessing.get_context("fork").Process(target=_child_signalled_early)
    started = time.monotonic()
    middle.start()
    middle.join(_CHILD_LIVES_S + 10)
    assert (middle.exitcode, time.monotonic() - started < _CHILD_LIVES_S) == (
        signal.SIGTERM,
        True,
    )
