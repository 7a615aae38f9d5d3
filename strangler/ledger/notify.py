"""Across hosts on PostgreSQL: a routing process hears of each new order by LISTEN/NOTIFY.

Intake sends ``NOTIFY strangler_intake`` in the statement that writes the order
(:data:`strangler.ledger.statements.INSERT_ORDER_NOTIFYING`), so the notification goes
out when, and only when, the order is committed. :class:`IntakeListener` holds one connection of its
own in ``LISTEN`` and calls ``on_intake(order_id)`` for each notification (its payload is
the new order's id). When the connection fails it reconnects with a bounded backoff and
calls ``on_intake(None)`` once connected again, since notifications sent meanwhile are
lost; the dispatcher's poll covers the gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog

from strangler.backoff import Backoff
from strangler.ledger.engine import display_url
from strangler.ledger.statements import INTAKE_CHANNEL

__all__ = ["IntakeListener"]

_log = structlog.get_logger()
_WAIT_S = 0.5
_RECONNECT = Backoff(0.5, 30.0)


class IntakeListener:
    """A thread listening on ``engine``'s database for intake notifications."""

    def __init__(self, engine: sa.Engine, on_intake: Callable[[str | None], None]) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"LISTEN/NOTIFY needs PostgreSQL, not {engine.dialect.name!r}")
        self._engine = engine
        self._on_intake = on_intake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> None:
        """Start listening (connects on the thread: a database down does not stop a start)."""
        if self._thread is not None:
            raise RuntimeError("this listener was started already; build a new one")
        self._thread = threading.Thread(target=self._run, name="strangler-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (within about half a second)."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            pooled: Any = None
            try:
                pooled = self._engine.raw_connection()
                connection = pooled.driver_connection
                connection.autocommit = True
                connection.execute(f"LISTEN {INTAKE_CHANNEL}")
                self.listening.set()
                _log.info(
                    "intake_listener_listening",
                    ledger=display_url(self._engine.url),
                    reconnected=failures > 0,
                )
                failures = 0
                # What was sent before it listened (or while it was down) is lost: look now.
                self._on_intake(None)
                self._listen(connection)
            except Exception as exc:  # the database down, or a bug: listen again later
                failures += 1
                self.listening.clear()
                delay = _RECONNECT.delay_s(failures)
                _log.warning("intake_listener_failed", error=str(exc), retry_in_s=delay)
                self._stopping.wait(delay)
            finally:
                if pooled is not None:
                    # Not back to the pool: it still LISTENs, or it failed.
                    pooled.invalidate()

    def _listen(self, connection: Any) -> None:
        while not self._stopping.is_set():
            for notification in connection.notifies(timeout=_WAIT_S):
                self._on_intake(notification.payload or None)
