"""The burst-crash scenario's parts: a killable sidecar, a burst load, and the final census.

The sidecar runs in a process group of its own (``strangler serve``: gunicorn's master and
its workers), so a crash is one ``killpg(SIGKILL)``: no clean-up, nothing drained. It is
restarted on the same port and the same data dir. The load is a real HTTP client: orders
sent in bursts over persistent connections; a refused connection (nothing sent) is tried
again, any other failure is counted as unanswered (the order may exist upstream).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from strangler.demo.processes import wait_until_ready
from strangler.legacy_adapter import LegacyClient, LegacyOrder
from strangler.orders import OrderNotification
from tests.helpers import REPO_ROOT, strangler_cmd

TERMINAL = ("fulfilled", "rejected_fraud", "payment_declined", "failed")
_REFUSED_RETRY_S = 0.05
_REFUSED_DEADLINE_S = 60.0


class KillableProcess:
    """A strangler command in its own process group; SIGKILLed as a group and restarted."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path,
        ready_url: str = "",
        ready_event: str = "",
    ) -> None:
        self.args = list(args)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_")},
            **env,
        }
        self.ready_url = ready_url
        self.ready_event = ready_event
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> float:
        """Start; wait until ``ready_url`` answers or ``ready_event`` is logged; seconds taken."""
        started = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        if self.ready_url:
            wait_until_ready(self.process, self.ready_url, log_path=self.log, timeout_s=timeout_s)
        if self.ready_event:
            wait_for(lambda: self._logged(offset), timeout_s, interval_s=0.05)
        return time.monotonic() - started

    def _logged(self, offset: int) -> bool:
        with self.log.open("rb") as log:
            log.seek(offset)
            return f'"{self.ready_event}"'.encode() in log.read()

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash does, and reap the leader."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def strangler_process(
    *args: str, env: Mapping[str, str], log: Path, ready_url: str = "", ready_event: str = ""
) -> KillableProcess:
    """A ``strangler`` CLI command as a killable process group."""
    return KillableProcess(
        strangler_cmd(*args), env=env, log=log, ready_url=ready_url, ready_event=ready_event
    )


@dataclass
class LoadResult:
    """What the client saw: status per order id, and orders with no answer."""

    statuses: dict[str, int] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    refused_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        """Orders whose request finished one way or the other."""
        with self.lock:
            return len(self.statuses) + len(self.unanswered)

    def answered_2xx(self) -> set[str]:
        """The orders the client was told were created."""
        return {order_id for order_id, status in self.statuses.items() if 200 <= status < 300}


class BurstLoad:
    """Sends orders to ``POST /orders`` at ``rate`` per second, in bursts, over ``connections``.

    Every ``burst_interval_s`` a burst of ``rate * burst_interval_s`` orders is queued;
    ``connections`` threads, each with one keep-alive connection, send them.
    """

    def __init__(
        self,
        port: int,
        orders: Sequence[OrderNotification],
        *,
        rate: float,
        connections: int,
        burst_interval_s: float = 0.5,
        timeout_s: float = 15.0,
    ) -> None:
        self.port = port
        self.orders = list(orders)
        self.rate = rate
        self.connections = connections
        self.burst_interval_s = burst_interval_s
        self.timeout_s = timeout_s
        self.result = LoadResult()
        self._queue: queue.Queue[OrderNotification | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the senders and the burst clock."""
        self._threads = [
            threading.Thread(target=self._send_all, daemon=True) for _ in range(self.connections)
        ]
        self._threads.append(threading.Thread(target=self._bursts, daemon=True))
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        """Wait for every order to be sent (or given up); fails the wait on timeout."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                raise TimeoutError(f"the load did not finish in {timeout_s} s")

    def _bursts(self) -> None:
        size = max(1, round(self.rate * self.burst_interval_s))
        next_at = time.monotonic()
        for start in range(0, len(self.orders), size):
            for order in self.orders[start : start + size]:
                self._queue.put(order)
            next_at += self.burst_interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        for _ in range(self.connections):
            self._queue.put(None)

    def _send_all(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while (order := self._queue.get()) is not None:
            connection = self._send(connection, order)
        if connection is not None:
            connection.close()

    def _send(
        self, connection: http.client.HTTPConnection | None, order: OrderNotification
    ) -> http.client.HTTPConnection | None:
        body = json.dumps(order_body(order)).encode()
        headers = {"Content-Type": "application/json"}
        deadline = time.monotonic() + _REFUSED_DEADLINE_S
        while True:
            if connection is None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout_s
                )
                try:
                    connection.connect()
                except (ConnectionRefusedError, ConnectionResetError):
                    # Nothing was sent: trying again is safe (the sidecar is restarting, or
                    # died with this connection still in its listen backlog).
                    connection = None
                    with self.result.lock:
                        self.result.refused_retries += 1
                    if time.monotonic() > deadline:
                        self._unanswered(order)
                        return None
                    time.sleep(_REFUSED_RETRY_S)
                    continue
            try:
                connection.request("POST", "/orders", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                # Sent, or maybe sent: the order may exist upstream, and like a client
                # that cannot tell, this one does not try again (reconciliation's case).
                connection.close()
                self._unanswered(order)
                return None
            with self.result.lock:
                self.result.statuses[order.order_id] = response.status
            if response.will_close:
                connection.close()
                return None
            return connection

    def _unanswered(self, order: OrderNotification) -> None:
        with self.result.lock:
            self.result.unanswered.append(order.order_id)


def order_body(order: OrderNotification) -> dict[str, Any]:
    """The order service's create-order request body for ``order``."""
    return {
        "order_id": order.order_id,
        "user_guid": order.user_guid,
        "unit_id": order.unit_id,
        "amount_cents": order.amount_cents,
        "quantity": order.quantity,
        "payment_token": order.payment_token,
    }


def every_legacy_order(legacy_url: str, *, limit: int = 500) -> dict[str, LegacyOrder]:
    """Every order the legacy app holds, read in bulk pages."""
    found: dict[str, LegacyOrder] = {}
    cursor = None
    with LegacyClient(legacy_url) as client:
        while True:
            page = client.orders_updated_since(cursor, limit=limit)
            found.update((order.order_id, order) for order in page)
            newest = max((order.updated_at for order in page), default=cursor)
            if len(page) < limit or newest == cursor:
                return found
            cursor = newest


@dataclass(frozen=True)
class Census:
    """The ledger against the legacy app, after the run."""

    created_upstream: int
    in_ledger: int
    terminal: int
    lost: list[str]
    not_terminal: list[str]
    status_differs: dict[str, tuple[str, str]]
    terminal_twice: list[str]
    by_source: Counter[str]


def census(ledger_url: str, legacy: Mapping[str, LegacyOrder]) -> Census:
    """Every upstream-created order: in the ledger? terminal once? as the legacy app says?"""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = {
                row.order_id: row
                for row in conn.execute(
                    sa.text("SELECT order_id, status, source, terminal_at FROM orders")
                )
            }
            endings = Counter(
                conn.execute(
                    # The terminal status an ended orders row holds counts as its row
                    # (the instant path's finish writes none; strangler.ledger.moves).
                    sa.text(
                        "SELECT order_id FROM (SELECT order_id, status FROM transitions"
                        " UNION SELECT order_id, status FROM orders"
                        " WHERE terminal_at IS NOT NULL) AS ended WHERE status IN "
                        "('fulfilled', 'rejected_fraud', 'payment_declined', 'failed')"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    upstream = set(legacy)
    in_ledger = upstream & set(rows)
    terminal = {order_id for order_id in in_ledger if rows[order_id].terminal_at is not None}
    return Census(
        created_upstream=len(upstream),
        in_ledger=len(in_ledger),
        terminal=len(terminal),
        lost=sorted(upstream - set(rows)),
        not_terminal=sorted(in_ledger - terminal),
        status_differs={
            order_id: (rows[order_id].status, legacy[order_id].status)
            for order_id in terminal
            if rows[order_id].status != legacy[order_id].status
        },
        terminal_twice=sorted(order_id for order_id, n in endings.items() if n > 1),
        by_source=Counter(rows[order_id].source for order_id in in_ledger),
    )


def wait_for(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> float:
    """Poll ``check`` until it holds; returns seconds waited (raises TimeoutError)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"not done after {timeout_s} s")
        time.sleep(interval_s)
    return time.monotonic() - started


def port_of(url: str) -> int:
    """The port of an ``http://127.0.0.1:<port>`` URL."""
    return int(url.rsplit(":", 1)[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
