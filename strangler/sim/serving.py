"""Serve the simulator with waitress: one process, a thread pool, one scheduler.

Why waitress rather than gunicorn: the simulator must run exactly one scheduler and must
be able to close and reopen its own listening socket (the ``refuse`` outage). waitress
serves from one process whose listening socket it owns; gunicorn's master process keeps
a copy of the socket, so a worker cannot make connections be refused.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import structlog
from flask import Flask
from waitress.adjustments import Adjustments
from waitress.server import TcpWSGIServer

from strangler.sim.app import simulator

__all__ = ["SwitchableServer", "serve"]

_log = structlog.get_logger()


class SwitchableServer(TcpWSGIServer):
    """A waitress TCP server whose listening socket can be closed and reopened.

    Both run in the server's event loop thread (through its trigger), so the asyncore
    socket map is only touched there. (waitress's stubs mistype some of the attributes
    used here, hence ``_loop``.)
    """

    @property
    def _loop(self) -> Any:
        return self

    @property
    def url(self) -> str:
        """Where the server listens."""
        return f"http://{self._loop.effective_host}:{self._loop.effective_port}"

    def stop_listening(self) -> None:
        """Close the listening socket and idle connections: new connections are refused."""
        self._loop.trigger.pull_trigger(self._close_listener)

    def start_listening(self) -> None:
        """Bind the same address again and accept connections."""
        self._loop.trigger.pull_trigger(self._open_listener)

    def _close_listener(self) -> None:
        loop = self._loop
        if loop.socket is None:
            return
        loop.accepting = False
        loop.del_channel()
        loop.socket.close()
        loop.socket = None
        for channel in list(loop.active_channels.values()):
            if not channel.requests:
                channel.will_close = True
        _log.info("sim_listener_closed", url=self.url)

    def _open_listener(self) -> None:
        loop = self._loop
        if loop.socket is not None:
            return
        loop.create_socket(loop.family, loop.socktype)
        loop.set_reuse_addr()
        loop.bind_server_socket()
        loop.accept_connections()
        _log.info("sim_listener_opened", url=self.url)


def serve(app: Flask, *, host: str, port: int, threads: int = 16) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, with its scheduler running; blocks."""
    sim = simulator(app)
    adjustments = Adjustments(
        host=host, port=port, threads=threads, ident="legacy-sim", channel_timeout=30
    )
    server = SwitchableServer(app, map={}, adj=adjustments)
    sim.faults.attach(server)
    sim.start()

    def _exit(signum: int, _frame: FrameType | None) -> None:
        sim.faults.close()  # let requests held by a hang outage go before threads are joined
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGINT)}
    _log.info(
        "sim_listening",
        url=server.url,
        db=str(sim.store.path),
        job_interval_s=sim.config.job_interval_s,
        batch_size=sim.config.batch_size,
    )
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        sim.stop()
        _log.info("sim_stopped")
