"""``strangler serve``: the sidecar under gunicorn (gthread workers), started programmatically.

Each worker process builds its own app after the fork, freezes its start-up heap (out of
the garbage collector's full collections, see strangler.routing.heap), starts the
runtime's background workers once the app is loaded, and stops them when the worker
exits: on SIGTERM gunicorn stops accepting, lets in-flight requests finish within the
graceful timeout, and then the runtime finishes or releases its in-flight orders.

With one worker process (the default) metrics live in that process. With several,
Prometheus multi-process mode is switched on here, before any worker exists: metric
files go to ``<data dir>/prometheus-multiproc``, emptied at every start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from strangler.settings import Settings
from strangler.sidecar.gunicorn_worker import WORKER_CLASS

__all__ = ["SidecarServer", "gunicorn_options", "heartbeat_dir", "serve"]

GRACEFUL_TIMEOUT_S = 30
_RUNTIME_STOP_S = 20.0
_SHM = Path("/dev/shm")  # noqa: S108  (gunicorn: mkstemp there, unlinked at once)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """The gunicorn settings ``strangler serve`` uses (the bench runs its rivals with them)."""
    return {
        "bind": f"{settings.serve_host}:{settings.serve_port}",
        "workers": settings.serve_workers,
        "threads": settings.serve_threads,
        "worker_class": WORKER_CLASS,  # gthread, answering its own errors in JSON
        "keepalive": 30,
        "timeout": 60,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "strangler-sidecar",
        "worker_tmp_dir": heartbeat_dir(),
        # The proxy appends this hop's real scheme to X-Forwarded-Proto: gunicorn must not
        # take a client's X-Forwarded-Proto (from a trusted peer) as the request's scheme.
        "secure_scheme_headers": {},
    }


def heartbeat_dir(shm: Path = _SHM) -> str | None:
    """Where gunicorn keeps its workers' heartbeat files: ``shm`` when it is a writable
    directory, else None (gunicorn's default, the system's temporary directory).

    Each worker touches its file on every turn of its loop; gunicorn's own advice is a
    memory-backed directory, since a disk-backed or overlay /tmp (containers) can block
    the worker on that write.
    """
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


class SidecarServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    """A gunicorn application serving ``create_app(settings)`` in every worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        multiprocess_dir: Path | None = None,
        process_orders: bool = True,
        bind: str | None = None,
    ) -> None:
        self._settings = settings
        self._multiprocess_dir = multiprocess_dir
        self.process_orders = process_orders
        self._bind = bind
        super().__init__()

    def load_config(self) -> None:
        """Apply gunicorn_options and the worker lifecycle hooks."""
        for key, value in gunicorn_options(self._settings).items():
            self.cfg.set(key, value)
        if self._bind is not None:
            self.cfg.set("bind", self._bind)
        self.cfg.set("post_worker_init", _start_workers)
        self.cfg.set("worker_exit", _stop_workers)
        if self._multiprocess_dir is not None:
            self.cfg.set("child_exit", _forget_worker_metrics)

    def load(self) -> Flask:
        """Build the app in the worker process (after the fork)."""
        from strangler.sidecar.app import create_app  # noqa: PLC0415  (after the fork)
        from strangler.sidecar.metrics import SidecarMetrics  # noqa: PLC0415

        metrics = SidecarMetrics(multiprocess_dir=self._multiprocess_dir)
        return create_app(self._settings, metrics=metrics)


def serve(settings: Settings, *, process_orders: bool = True, bind: str | None = None) -> None:
    """Run the sidecar until SIGTERM or SIGINT; returns after a graceful stop.

    With ``process_orders`` False the workers only take orders in (see SidecarState.start).
    ``bind`` replaces the host and port (front mode binds ``unix:<socket>``).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    multiprocess_dir = None
    if settings.serve_workers > 1:
        multiprocess_dir = _fresh_multiprocess_dir(settings.data_dir / "prometheus-multiproc")
    # Imported once here, so that every worker forked later starts without the cost.
    import strangler.routing.runtime  # noqa: PLC0415
    import strangler.sidecar.app  # noqa: F401, PLC0415

    SidecarServer(
        settings, multiprocess_dir=multiprocess_dir, process_orders=process_orders, bind=bind
    ).run()


def _fresh_multiprocess_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    # prometheus_client reads this when metric values are created; the workers inherit it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path.resolve())
    from prometheus_client import values  # noqa: PLC0415  (after the variable is set)

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path.resolve()


def _start_workers(worker: Any) -> None:
    from strangler.routing.heap import freeze_start_up_heap  # noqa: PLC0415
    from strangler.sidecar.state import sidecar_state  # noqa: PLC0415

    server = getattr(worker, "app", None)
    process_orders = server.process_orders if isinstance(server, SidecarServer) else True
    # The app is loaded: what is alive now lives as long as the worker (see heap.py).
    freeze_start_up_heap()
    sidecar_state(worker.wsgi).start(process_orders=process_orders)


def _stop_workers(_server: Any, worker: Any) -> None:
    from strangler.sidecar.state import sidecar_state  # noqa: PLC0415

    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        sidecar_state(app).stop(_RUNTIME_STOP_S)


def _forget_worker_metrics(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
