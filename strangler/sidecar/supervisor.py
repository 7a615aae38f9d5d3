"""``strangler serve`` as a supervisor of child processes: HTTP, routing and nginx.

The children are the Python HTTP server (gunicorn, strangler.sidecar.server), optionally
the routing processes (dispatcher and follower, as ``strangler worker``; one by default),
and in front mode nginx. The supervisor forwards nothing itself; it waits. If any child
exits on its own, the others are stopped and ``serve`` exits non-zero, so that systemd
or Kubernetes restarts the whole sidecar. On SIGTERM or SIGINT nginx stops first (no new
requests), then the HTTP server (in-flight requests finish), then routing; ``serve``
exits 0.

Every child is told by the kernel (PR_SET_PDEATHSIG) to stop if the supervisor dies, so
that no process is left behind even after a SIGKILL; a child that finds its supervisor
already gone when it asks (it died in between) stops by itself. SIGTERM and SIGINT are
held while a child is forked, so that one arriving before the child has its own handlers
is neither lost nor taken by the supervisor's inherited one. The Python children share the
supervisor's process group (a SIGKILL to the group is a crash of the whole sidecar);
nginx has a group of its own, so that its workers can be stopped with it if its master
is killed alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Literal

import structlog

from strangler.exceptions import ConfigurationError
from strangler.routing.affinity import check_routing_cpus, keep_routing_cpu
from strangler.settings import Settings
from strangler.sidecar.front_nginx import front_paths, nginx_config

__all__ = ["find_nginx", "supervise"]

_log = structlog.get_logger(__name__)
_PR_SET_PDEATHSIG = 1
_NGINX_STOP_S = 10.0
_HTTP_STOP_S = 40.0
_ROUTING_STOP_S = 40.0
_SOCKET_WAIT_S = 60.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Where orders are routed: a child process, the HTTP workers, or not here at all.
Routing = Literal["process", "inline", "none"]


def find_nginx() -> str:
    """The nginx binary (PATH, then /usr/sbin); raises ConfigurationError when missing."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ConfigurationError(
            "--front nginx needs nginx installed (Debian/Ubuntu: apt-get install -y nginx)"
        )
    return found


@dataclass(slots=True)
class _Child:
    """One supervised child: its name, how to tell it to stop, and how long to wait."""

    name: str
    pid: int
    stop_signal: signal.Signals
    grace_s: float
    exit_code: Callable[[], int | None]
    join: Callable[[float], None]
    own_group: bool = False


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT while a child is forked; they arrive when the block ends."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _child_setup(supervisor_pid: int) -> None:
    """First thing in a child forked under :func:`_stop_signals_held`.

    The stop signals get their default action back before they are let in (one that
    arrived since the fork then stops the child), and the kernel is asked to send
    SIGTERM when the supervisor dies. If it died before the asking, no signal will come:
    the child stops itself as that signal would have stopped it.
    """
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if os.getppid() != supervisor_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _http_main(
    supervisor_pid: int, settings: Settings, process_orders: bool, bind: str | None
) -> None:
    _child_setup(supervisor_pid)
    from strangler.sidecar.server import serve  # noqa: PLC0415  (in the child)

    serve(settings, process_orders=process_orders, bind=bind)


def _routing_main(supervisor_pid: int, settings: Settings, index: int) -> None:
    _child_setup(supervisor_pid)
    keeper = keep_routing_cpu(settings.routing_cpus, index)
    from strangler.routing.heap import freeze_start_up_heap  # noqa: PLC0415  (in the child)
    from strangler.routing.runtime import Runtime  # noqa: PLC0415  (in the child)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stopping.set())
    signal.signal(signal.SIGINT, lambda _s, _f: stopping.set())
    runtime = Runtime.from_settings(settings)
    frozen = freeze_start_up_heap()
    runtime.start()
    _log.info("routing_process_started", owner=runtime.dispatcher.owner, frozen_objects=frozen)
    while not stopping.wait(0.5):
        pass
    runtime.stop(_ROUTING_STOP_S - 5)
    if keeper is not None:
        keeper.stop()
    _log.info("routing_process_stopped")


def _forked(name: str, target: Callable[..., None], *args: object, grace_s: float) -> _Child:
    process: BaseProcess = multiprocessing.get_context("fork").Process(
        target=target, args=(os.getpid(), *args), name=f"strangler-{name}", daemon=False
    )
    with _stop_signals_held():
        process.start()
    assert process.pid is not None

    def join(timeout: float) -> None:
        process.join(timeout)

    return _Child(name, process.pid, signal.SIGTERM, grace_s, lambda: process.exitcode, join)


def _nginx(binary: str, settings: Settings) -> _Child:
    paths = front_paths(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(nginx_config(settings, paths))
    check = subprocess.run(
        [binary, "-t", "-q", "-p", str(paths.root), "-c", str(paths.config), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check.returncode != 0:
        raise ConfigurationError(f"nginx rejected the generated config: {check.stderr.strip()}")
    setup = functools.partial(_child_setup, os.getpid())
    with _stop_signals_held():
        process = subprocess.Popen(
            [binary, "-p", str(paths.root), "-c", str(paths.config), "-e", str(paths.error_log)],
            preexec_fn=setup,  # noqa: PLW1509  (no threads exist yet)
            process_group=0,
        )

    def join(timeout: float) -> None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return

    # SIGQUIT: nginx's graceful stop (idle connections close, in-flight ones finish).
    return _Child(
        "nginx", process.pid, signal.SIGQUIT, _NGINX_STOP_S, process.poll, join, own_group=True
    )


def _wait_for_socket(path: Path, http: _Child) -> None:
    deadline = time.monotonic() + _SOCKET_WAIT_S
    while not path.is_socket():
        if http.exit_code() is not None or time.monotonic() > deadline:
            raise ConfigurationError(f"the Python app did not start listening on {path}")
        time.sleep(0.05)


def supervise(settings: Settings, *, front: str | None, routing: Routing) -> int:
    """Run the sidecar's children until a signal (returns 0) or a child's death (returns 1).

    ``front`` is None (Python serves the public port) or ``"nginx"``. ``routing`` says
    where the dispatcher and follower run: ``"process"`` in child processes of their own
    (``settings.routing_processes`` of them, sharing the ledger under leases as several
    ``strangler worker`` processes do), ``"inline"`` in the HTTP worker processes,
    ``"none"`` nowhere here (intake only; a ``strangler worker`` routes). Raises
    ConfigurationError when nginx is missing or rejects its config.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    binary = find_nginx() if front == "nginx" else None
    bind = f"unix:{front_paths(settings).app_socket}" if front == "nginx" else None
    if bind is not None:
        front_paths(settings).root.mkdir(parents=True, exist_ok=True)
        front_paths(settings).app_socket.unlink(missing_ok=True)
    # Imported once here, so that the forked children start without the cost.
    import strangler.routing.runtime  # noqa: PLC0415
    import strangler.sidecar.app  # noqa: F401, PLC0415

    children: list[_Child] = []
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _log.info("sidecar_stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if routing == "process":
            check_routing_cpus(settings.routing_cpus)
            count = settings.routing_processes
            for index in range(count):
                name = "routing" if count == 1 else f"routing-{index + 1}"
                children.append(
                    _forked(name, _routing_main, settings, index, grace_s=_ROUTING_STOP_S)
                )
        http = _forked(
            "http", _http_main, settings, routing == "inline", bind, grace_s=_HTTP_STOP_S
        )
        children.append(http)
        if binary is not None:
            _wait_for_socket(front_paths(settings).app_socket, http)
            children.append(_nginx(binary, settings))
        _log.info(
            "sidecar_supervising",
            children={child.name: child.pid for child in children},
            front=front or "python",
        )
        return _watch(children, stopping)
    finally:
        _stop_all(children)


def _watch(children: list[_Child], stopping: threading.Event) -> int:
    while not stopping.wait(0.2):
        for child in children:
            code = child.exit_code()
            if code is not None:
                _log.error("sidecar_child_exited", child=child.name, pid=child.pid, code=code)
                return 1
    return 0


def _stop_all(children: list[_Child]) -> None:
    # nginx first (it is started last), then HTTP, then routing.
    for child in reversed(children):
        if child.exit_code() is None:
            os.kill(child.pid, child.stop_signal)
            child.join(child.grace_s)
            if child.exit_code() is None:
                _log.warning("sidecar_child_killed", child=child.name, pid=child.pid)
                os.kill(child.pid, signal.SIGKILL)
        if child.own_group:
            # Whatever is left in its group (an nginx worker whose master was killed).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        child.join(5.0)
