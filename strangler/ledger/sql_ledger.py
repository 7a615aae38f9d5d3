"""The durable order ledger on SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

Every write is idempotent: inserts are ``INSERT ... ON CONFLICT DO NOTHING``, status
changes only move forward, and lease changes are conditional updates (the frequent
statements are in :mod:`strangler.ledger.statements`). SQLAlchemy errors are translated
to :class:`LedgerError` here, at the boundary. On a SQLite file, a process's writes queued
for their turn share one commit (:mod:`strangler.ledger.group_commit`), and the
dispatcher's claim pins the decisions of the orders it takes (:meth:`SqlLedger.claim_due`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from strangler.compare.pairing import OrderRecord
from strangler.compare.records import Comparison, ComparisonKind
from strangler.exceptions import LedgerError
from strangler.ledger import (
    archive,
    hand_back,
    leases,
    legacy_progress,
    moves,
    pg_writes,
    schema,
    sqlite_steps,
    statements,
    tally,
)
from strangler.ledger import comparisons as comparison_store
from strangler.ledger.checkpoint import WalCheckpointer
from strangler.ledger.driver import DriverConnection, DriverWrites, WriteConnection
from strangler.ledger.engine import (
    BUSY_TIMEOUT_MS,
    create_ledger_engine,
    display_url,
    read_snapshot,
)
from strangler.ledger.group_commit import TurnTimeout, WriteTurns
from strangler.ledger.migrate import ensure_schema
from strangler.ledger.notify import IntakeListener
from strangler.ledger.ops_queries import OpsFigures, load_ops_figures
from strangler.ledger.records import (
    DurationBuckets,
    Handoff,
    LeasedOrder,
    LedgerCounts,
    RolloutEvent,
    RolloutEventFields,
    utc_now,
)
from strangler.ledger.redact import mask_body, stored_notification
from strangler.ledger.story import build_story
from strangler.orders import (
    TERMINAL_STATUSES,
    Decision,
    OrderNotification,
    OrderStatus,
    Route,
    StepResult,
)

if TYPE_CHECKING:
    from strangler.report.report import Report
    from strangler.report.verdict import Thresholds

__all__ = ["UNKNOWN_TO_LEGACY_KEY", "SqlLedger", "ledger_from_url", "utc_now"]

# The reconciliation's last finding of orders the legacy app never reported (kv, JSON).
UNKNOWN_TO_LEGACY_KEY = "reconciler.unknown_to_legacy"

_orders = schema.orders
_steps = schema.step_results
_transitions = schema.transitions
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)
# The paths whose orders the batch jobs run (statements.FOLLOWED, also with a hand-off).
_FOLLOWED_PATHS = frozenset({Route.LEGACY, Route.SHADOW})
# PostgreSQL's SQLSTATE for a full NOTIFY queue ("too many notifications").
_PROGRAM_LIMIT_EXCEEDED = "54000"
# Would the server take a write? A standby is in recovery; a database or role may default
# every transaction to read-only.
_WRITABLE_POSTGRES = sa.text(
    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')"
)
_log = structlog.get_logger()
_R = TypeVar("_R")
# pin_decision's transaction pinned the decision now (else it returns the order's row).
_PINNED_NOW = object()


class _Lock(Protocol):
    """A threading.Lock or RLock."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


def ledger_from_url(url: str, *, clock: Callable[[], datetime] = utc_now) -> SqlLedger:
    """Open (and create or migrate) the ledger at a SQLAlchemy URL.

    Raises ConfigurationError for an unsupported URL and LedgerError when the database
    cannot be reached or was written by a newer strangler.
    """
    engine = create_ledger_engine(url)
    try:
        return SqlLedger(engine, clock=clock)
    except BaseException:
        engine.dispose()
        raise


class SqlLedger:
    """The order ledger: what the router, dispatcher, follower and sidecar each declare.

    Thread-safe; several processes may share one database (leases keep one worker per
    order). Every method raises LedgerError when the database fails. On SQLite a write
    waits at most ``busy_timeout_s`` in all for the write lock (behind this process's
    other writers and other processes alike); reads never wait for it.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._url = display_url(engine.url)
        is_sqlite = engine.dialect.name == "sqlite"
        self._insert = sqlite.insert if is_sqlite else postgresql.insert
        # PostgreSQL: the usual pin and finish are one autocommitted statement each.
        self._one_statement = engine.dialect.name == "postgresql"
        in_memory = is_sqlite and engine.url.database in (None, "", ":memory:")
        # In memory: one shared connection, so every use is serialised. A SQLite file:
        # writers of this process queue on a lock rather than in SQLite's busy handler,
        # whose sleeps (1, 2, 5, 10... ms) made the intake's p99 grow with threads.
        memory_lock = threading.RLock() if in_memory else None
        self._guard: AbstractContextManager[Any] = memory_lock or nullcontext()
        # Waiting for the turn counts against the busy timeout too: a write waits at most
        # one busy timeout in all, not one behind this process's other writers plus its own.
        self._write_lock: _Lock | None = memory_lock
        self._busy_timeout_s = busy_timeout_s
        with self._translated("migrate the schema"):
            self.schema_version = ensure_schema(engine)
        # SQLite: writes skip SQLAlchemy's per-call cost (see strangler.ledger.driver).
        self._driver = (
            DriverWrites(engine, busy_timeout_s=self._busy_timeout_s) if is_sqlite else None
        )
        # A SQLite file: writers take turns, and the writes queued for a turn share its
        # commit (strangler.ledger.group_commit).
        self._turns: WriteTurns[DriverConnection] | None = None
        if self._driver is not None and not in_memory:
            driver = self._driver
            self._turns = WriteTurns(
                lambda deadline: driver.transaction(deadline=deadline),
                DriverConnection.savepoint,
                lambda conn: conn.in_transaction,
            )

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file (resolved); None in memory or on PostgreSQL."""
        url = self._engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(str(url.database)).expanduser().resolve()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for code inside strangler/ledger/ and for tests.

        Callers elsewhere use the domain methods (``report``, ``duration_histogram``...),
        which translate database errors to LedgerError.
        """
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        if self._driver is not None:
            with self._write_turn("close the ledger", time.monotonic() + self._busy_timeout_s):
                self._driver.close()
        self._engine.dispose()

    # -- intake ---------------------------------------------------------------------

    def record_received(self, order: OrderNotification, *, source: str) -> bool:
        """Write the order if new (committed on return); False for a duplicate.

        On PostgreSQL a new order's transaction also sends the intake notification
        (see :meth:`intake_listener`), delivered only if it commits. It commits without
        waiting for its WAL flush, so that routing starts at once, and a second
        statement then waits for that flush: durable on return all the same.
        """
        now = self._clock()
        row = {
            "order_id": order.order_id,
            "notification": stored_notification(order),
            "source": source,
            "status": OrderStatus.RECEIVED.value,
            "received_at": now,
            "updated_at": now,
            "needs_dispatch": True,
            "next_attempt_at": now,
            "attempts": 0,
        }
        if self._driver is not None:
            return self._grouped(
                "record a received order",
                lambda conn: conn.execute(statements.INSERT_ORDER, row).rowcount == 1,
            )
        try:
            return self._insert_received(row, notify=True)
        except LedgerError as exc:
            if not _notify_refused(exc):
                raise
            # The wake-up is a hint: the order goes in without it, and a poll finds it.
            _log.warning("intake_notification_refused", order_id=order.order_id, error=str(exc))
        return self._insert_received(row, notify=False)

    def _insert_received(self, row: dict[str, Any], *, notify: bool) -> bool:
        operation = "record a received order"
        if self._engine.dialect.name != "postgresql":
            with self._write(operation) as conn:
                return conn.execute(statements.INSERT_ORDER, row).rowcount == 1
        # A row comes back, and the NOTIFY goes, only when it inserted one.
        with self._alone(operation) as alone:
            if not notify:
                return alone.execute(statements.INSERT_ORDER, row).rowcount == 1
            # Committed unflushed: routing sees the order, and hears of it, while its WAL
            # is being flushed; the flush is waited for before answering, as an order
            # answered for must be durable. Also for a duplicate, whose first intake may
            # not be flushed yet. A routing process's pin waits for a flush past it too.
            inserted = alone.execute(statements.INSERT_ORDER_NOTIFYING, row).first() is not None
            alone.execute(statements.FLUSH_COMMITTED)
            return inserted

    def intake_listener(self, on_intake: Callable[[str | None], None]) -> IntakeListener | None:
        """A listener calling ``on_intake(order_id)`` for each order any process takes in.

        PostgreSQL only (LISTEN/NOTIFY; ``on_intake(None)`` once listening, since what
        was sent before is lost); None on SQLite, where routing processes share a
        host and are woken by :mod:`strangler.routing.wakeups`. Not started yet.
        """
        if self._engine.dialect.name != "postgresql":
            return None
        return IntakeListener(self._engine, on_intake)

    def wal_checkpointer(self) -> WalCheckpointer | None:
        """A checkpointer of this SQLite file's WAL, off the writers' commits; not started.

        None in memory and on PostgreSQL. Long-lived writing processes (each routing
        process, ``strangler worker``) run one; see strangler.ledger.checkpoint.
        """
        database = self.sqlite_file
        return None if database is None else WalCheckpointer(database)

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None:
        """Keep a rejected intake body (payment values masked); the same body is kept once."""
        raw = raw_body.encode() if isinstance(raw_body, str) else raw_body
        body = mask_body(raw)
        statement = (
            self._insert(schema.rejected_intake)
            .values(
                source=source,
                reason=reason,
                raw_body=body,
                body_size=len(raw),
                body_sha256=hashlib.sha256(body).hexdigest(),
                received_at=self._clock(),
            )
            .on_conflict_do_nothing(index_elements=["source", "body_sha256"])
        )
        with self._write("record a rejected body") as conn:
            conn.execute(statement)

    # -- routing and recording --------------------------------------------------------

    def pin_decision(
        self,
        order_id: str,
        decision: Decision,
        *,
        release_owner: str | None = None,
        start_running: bool = False,
    ) -> Decision:
        """Pin the decision and move the order to ``routed``, unless one is pinned already.

        Returns ``decision`` itself when it was pinned now, else the earlier one: an order
        keeps its path for its whole life. With ``release_owner``, when the decision is
        pinned now, that owner's lease is also released as done in the same transaction
        (for a worker with nothing more to do, such as on the legacy path); a lease the
        owner no longer holds is left as it is. With ``start_running``, an order pinned
        now also moves on to ``running`` in the same transaction (an instant-path worker
        about to run the pipeline).

        On PostgreSQL the usual ``start_running`` pin is one statement (see
        :mod:`strangler.ledger.pg_writes`); other cases take the same transaction as ever.
        """
        now = self._clock()
        alone = self._one_statement and start_running and release_owner is None
        # A followed path is pinned below: its order may have to end as the legacy app did.
        if alone and decision.path not in _FOLLOWED_PATHS:
            values = _pin_values(order_id, decision, now)
            with self._alone("pin a decision") as conn:
                if conn.execute(pg_writes.PIN_AND_START, values).first() is not None:
                    return decision

        def pin(conn: WriteConnection) -> Any:
            """_PINNED_NOW when pinned now, else the order's row (None when unknown)."""
            if self._pin(
                conn,
                order_id,
                decision,
                now=now,
                release_owner=release_owner,
                start_running=start_running,
            ):
                return _PINNED_NOW
            return conn.execute(
                statements.ORDER_BY_ID, statements.params(order_id=order_id)
            ).first()

        row = self._grouped("pin a decision", pin)
        if row is _PINNED_NOW:
            return decision
        if row is None:
            raise LedgerError(
                f"unknown order {order_id!r}", operation="pin a decision", url=self._url
            )
        pinned = leases.decision_of(row._mapping)
        assert pinned is not None  # the UPDATE above only skips rows with a path
        return pinned

    def transition(
        self,
        order_id: str,
        status: OrderStatus,
        *,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move the order forward to ``status`` at ``at`` (default now).

        Idempotent: a status already reached, or behind the current one, changes nothing
        and returns False. ``fell_back`` means a fallback (see :meth:`hand_off`).
        Raises LedgerError for an unknown order.
        """
        if status is OrderStatus.FELL_BACK:
            return self.hand_off(order_id, Handoff.FALLBACK, reason=reason or "", at=at)
        extra = {"outcome": status.value} if status.is_terminal else {}
        with self._write(f"move an order to {status}") as conn:
            return self._move(
                conn, order_id, status, reason=reason, at=at or self._clock(), extra=extra
            )

    def finish(
        self,
        order_id: str,
        status: OrderStatus,
        steps: Sequence[tuple[StepResult, int]],
        *,
        at: datetime,
        release_owner: str,
    ) -> bool:
        """Record the steps, end the order at terminal ``status``, release the lease: at once.

        One transaction for what an instant-path worker does after the pipeline ended:
        :meth:`record_steps`, :meth:`transition` to ``status`` at ``at``, and
        :meth:`release_lease` of ``release_owner``'s lease as done (left as it is when that
        owner no longer holds it). Idempotent like each of them; returns whether the order
        moved now. Raises ValueError for a status that is not terminal. On PostgreSQL the
        usual finish (the owner holds the lease) is one statement (strangler.ledger.pg_writes).
        """
        if not status.is_terminal:
            raise ValueError(f"finish() ends an order; {status} is not a terminal status")
        now = self._clock()
        held = statements.params(order_id=order_id, owner=release_owner, at=at, now=now)
        operation = f"finish an order as {status}"
        if self._one_statement and len(steps) <= pg_writes.MAX_STEPS:
            rows = statements.step_rows(steps, self._clock())
            values = {**held, **pg_writes.step_params(rows)}
            with self._alone(operation) as alone:
                if alone.execute(pg_writes.finish(status, len(rows)), values).first() is not None:
                    return True
            # Else the steps are in (the path below skips them) and the order moves one
            # statement at a time.

        def finish(conn: WriteConnection) -> bool:
            self._insert_steps(conn, steps)
            # Usually one UPDATE ends the order and releases its lease (the orders row holds
            # the move: strangler.ledger.moves); else one by one.
            if conn.execute(statements.finish_held(status), held).rowcount == 1:
                return True
            moved = self._move(
                conn, order_id, status, reason=None, at=at, extra={"outcome": status.value}
            )
            _release_as_done(conn, order_id, release_owner, now)
            return moved

        return self._grouped(operation, finish)

    def hand_off(
        self, order_id: str, kind: Handoff, *, reason: str, at: datetime | None = None
    ) -> bool:
        """Record that the batch jobs take over an instant-path order (status ``fell_back``)."""
        with self._write("hand an order to the batch jobs") as conn:
            moved = self._move(
                conn,
                order_id,
                OrderStatus.FELL_BACK,
                reason=reason,
                at=at or self._clock(),
                extra={"handoff": kind.value},
            )
            self._end_as_legacy_did(conn, order_id)
            return moved

    def record_step(self, step: StepResult, *, seq: int = 0) -> bool:
        """Record one step; ``seq`` numbers repeats of a step within its path.

        Idempotent on (order_id, path, step, dry_run, seq): the first record stays.
        Returns True when the record is new.
        """
        with self._write("record a step") as conn:
            return self._insert_steps(conn, [(step, seq)]) == 1

    def record_steps(self, steps: Sequence[tuple[StepResult, int]]) -> int:
        """Record several (step, seq) pairs in one transaction; returns how many were new."""
        if not steps:
            return 0
        with self._write("record steps") as conn:
            return self._insert_steps(conn, steps)

    def record_dry_run_outcome(self, order_id: str, outcome: str | None) -> None:
        """Keep the business outcome a shadow order's dry run reached."""
        values = statements.params(order_id=order_id, outcome=outcome, now=self._clock())
        with self._write("record a dry-run outcome") as conn:
            conn.execute(statements.SET_DRY_RUN_OUTCOME, values)

    # -- the dispatcher's queue ---------------------------------------------------------

    def claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        decide: Callable[[LeasedOrder], Decision] | None = None,
    ) -> list[LeasedOrder]:
        """Lease up to ``limit`` orders that need processing and nobody holds.

        An order is due when it needs dispatching, its retry time has passed and its
        lease is free or expired. Each claim is a conditional UPDATE (with ``FOR UPDATE
        SKIP LOCKED`` on PostgreSQL), so concurrent claimers never get the same order.

        With ``decide`` (on SQLite), each claimed order with no decision yet is decided by
        ``decide(order)`` and pinned in the claim's own transaction, as
        :meth:`pin_decision` pins it: an instant-path order is started (``running``), a
        shadow one routed, and a legacy one's lease released with the pin (nobody holds
        it: the batch jobs have it). Those come back with the decision and ``pinned_now``
        set. One commit then claims and pins a batch, where a pin per order took one of
        its own; the decision is durable before any worker starts a side effect, as with
        :meth:`pin_decision`. ``decide`` runs inside the write transaction, so it must be
        quick and must not touch the ledger; an exception from it rolls the claim back.

        On PostgreSQL ``decide`` is not called (each worker pins, one autocommitted
        statement), and the claim commits without waiting for its WAL flush
        (``synchronous_commit = off`` for this transaction only): a claim lost in a
        database crash is a lease that never existed, which leases already survive (the
        holder's renewal finds it lost; every step is idempotent), and the holder's next
        durable write flushes it anyway. It takes a disk flush off every order's way
        from intake to routing; pinning in it would put the flush back.
        """
        if limit < 1:
            return []
        now = self._clock()
        expires = now + timedelta(seconds=lease_seconds)
        operation = "claim due orders"
        if self._engine.dialect.name == "postgresql":
            with self._alone(operation) as alone:
                return leases.claim_due(alone, owner, limit=limit, now=now, expires=expires)

        def claim(conn: WriteConnection) -> list[LeasedOrder]:
            claimed = leases.claim_due(conn, owner, limit=limit, now=now, expires=expires)
            if decide is None:
                return claimed
            return [
                order if order.decision is not None else self._pin_claimed(conn, order, decide, now)
                for order in claimed
            ]

        return self._grouped(operation, claim)

    def _pin_claimed(
        self,
        conn: WriteConnection,
        order: LeasedOrder,
        decide: Callable[[LeasedOrder], Decision],
        now: datetime,
    ) -> LeasedOrder:
        """Decide and pin a claimed order in the claim's transaction (see claim_due)."""
        decision = decide(order)
        instant = decision.path is Route.INSTANT
        owner = order.lease_owner if decision.path is Route.LEGACY else None
        if not self._pin(
            conn, order.order_id, decision, now=now, release_owner=owner, start_running=instant
        ):
            return order  # not reached: the claim read no path, and no one wrote since
        status = OrderStatus.RUNNING if instant else OrderStatus.ROUTED
        if order.status.is_terminal:
            status = order.status
        return order.pinned_as(decision, status)

    def renew_leases(
        self, owner: str, order_ids: Sequence[str], *, lease_seconds: float
    ) -> set[str]:
        """Extend ``owner``'s leases; returns the order_ids it still holds (others were lost)."""
        if not order_ids:
            return set()
        expires = self._clock() + timedelta(seconds=lease_seconds)
        return self._grouped(
            "renew leases", lambda conn: leases.renew(conn, owner, order_ids, expires=expires)
        )

    def release_lease(
        self,
        order_id: str,
        owner: str,
        *,
        done: bool,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Give up ``owner``'s lease: the order is done, or due again at ``retry_at``.

        ``error`` (when given) is kept as the order's last error. Returns False when
        ``owner`` no longer held the lease (nothing changes then).
        """
        now = self._clock()
        return self._grouped(
            "release a lease",
            lambda conn: leases.release(
                conn, order_id, owner, done=done, retry_at=retry_at or now, now=now, error=error
            ),
        )

    def return_unstarted(self, owner: str, order_ids: Sequence[str]) -> int:
        """Give back ``owner``'s claims on orders it has not started: due again at once,
        and the claims' attempts uncounted. Returns how many it still held."""
        if not order_ids:
            return 0
        with self._write("return unstarted orders") as conn:
            return leases.return_unstarted(conn, owner, order_ids)

    def hold_role(self, name: str, owner: str, *, seconds: float) -> bool:
        """Take or keep a role one process at a time plays; True while ``owner`` has it.

        The role (following the legacy app, say) is free to take ``seconds`` after its
        holder last kept it, or once the holder gives it up (:meth:`give_up_role`).
        """
        now = self._clock()
        expires = now + timedelta(seconds=seconds)
        with self._write("hold a role") as conn:
            return leases.hold_role(conn, name, owner, now=now, expires=expires)

    def give_up_role(self, name: str, owner: str) -> None:
        """Let another process take ``owner``'s role now (nothing happens if not held)."""
        with self._write("give up a role") as conn:
            leases.give_up_role(conn, name, owner, now=self._clock())

    # -- the legacy follower's queue ----------------------------------------------------

    def open_orders(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` the ledger has and are not terminal yet."""
        if not order_ids:
            return set()
        with self._read("find open orders") as conn:
            return legacy_progress.open_orders(conn, order_ids)

    def known_orders(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` the ledger has, whatever their status."""
        if not order_ids:
            return set()
        with self._read("find known orders") as conn:
            return legacy_progress.known_orders(conn, order_ids)

    def followed_open(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` the batch jobs run for us and are not terminal yet."""
        if not order_ids:
            return set()
        with self._read("find followed orders") as conn:
            return legacy_progress.followed_open(conn, order_ids)

    def stale_followed(
        self, *, never_seen_before: datetime, seen_before: datetime, limit: int
    ) -> list[str]:
        """Followed open orders to look up one by one, least recently seen first.

        Those routed before ``never_seen_before`` that the follower never saw in the legacy
        app (the batch jobs may have finished them before the ledger knew them), and those
        last seen before ``seen_before``.
        """
        with self._read("find stale followed orders") as conn:
            return legacy_progress.stale_followed(
                conn, never_seen_before=never_seen_before, seen_before=seen_before, limit=limit
            )

    def record_legacy_progress(
        self,
        order_id: str,
        steps: Sequence[tuple[StepResult, int]],
        *,
        legacy_status: str,
        legacy_terminal_at: datetime | None = None,
    ) -> bool:
        """Record what the legacy app reports about an open order, in one transaction.

        The batch jobs' steps are recorded whatever the order's path (only the batch jobs
        make them). The legacy status is kept with the order; when it is terminal and the
        batch jobs run the order for us (legacy or shadow path, or handed off), the order
        ends with it, at the legacy app's time; an order routed or handed off later ends
        then. Returns True when the order ended now.
        """
        with self._write("record legacy progress") as conn:
            self._insert_steps(conn, steps)
            legacy_progress.mark_seen(
                conn,
                order_id,
                now=self._clock(),
                legacy_status=legacy_status,
                legacy_terminal_at=legacy_terminal_at,
            )
            return self._end_as_legacy_did(conn, order_id)

    def adopt(
        self,
        order: OrderNotification,
        decision: Decision,
        steps: Sequence[tuple[StepResult, int]],
        *,
        source: str,
        legacy_status: str,
        legacy_terminal_at: datetime | None = None,
    ) -> bool:
        """Write an order the intake missed, as the batch jobs run it, in one transaction.

        The order is recorded with ``source`` and pinned to ``decision`` (not dispatched:
        the batch jobs have it), with the legacy app's steps and status; it ends now when
        that status is terminal, else the follower follows it. Returns False, changing
        nothing, when the ledger has the order already.
        """
        now = self._clock()
        row = {
            "order_id": order.order_id,
            "notification": stored_notification(order),
            "source": source,
            "status": OrderStatus.RECEIVED.value,
            "received_at": now,
            "updated_at": now,
            "needs_dispatch": False,
            "next_attempt_at": now,
            "attempts": 0,
        }
        pin = _pin_values(order.order_id, decision, now)
        with self._write("adopt a missed order") as conn:
            if conn.execute(statements.INSERT_ORDER, row).rowcount != 1:
                return False
            conn.execute(statements.PIN_DECISION, pin)
            self._move(conn, order.order_id, OrderStatus.ROUTED, reason=decision.reason, at=now)
            self._insert_steps(conn, steps)
            legacy_progress.mark_seen(
                conn,
                order.order_id,
                now=now,
                legacy_status=legacy_status,
                legacy_terminal_at=legacy_terminal_at,
            )
            self._end_as_legacy_did(conn, order.order_id)
        return True

    def unknown_to_legacy(self, *, received_before: datetime, limit: int) -> tuple[int, list[str]]:
        """Open orders received before ``received_before`` the legacy app never reported.

        The follower records the legacy status of every open order the legacy app
        reports; an open order without one that old is one the legacy app has never heard
        of. Returns how many there are and the first ``limit`` ids, oldest first.
        """
        with self._read("find orders unknown to the legacy app") as conn:
            return legacy_progress.unknown_to_legacy(
                conn, received_before=received_before, limit=limit
            )

    def mark_checked(self, order_ids: Sequence[str], *, note: str | None = None) -> None:
        """Note that the follower looked for these orders (``note`` becomes last_error)."""
        if not order_ids:
            return
        with self._write("mark orders checked") as conn:
            legacy_progress.mark_checked(conn, order_ids, now=self._clock(), note=note)

    def get_value(self, name: str) -> str | None:
        """A small persisted value (the follower's cursor), or None."""
        statement = sa.select(schema.kv.c.value).where(schema.kv.c.name == name)
        with self._read("read a value") as conn:
            return conn.execute(statement).scalar()

    def set_value(self, name: str, value: str) -> None:
        """Persist a small value under ``name`` (last write wins)."""
        insert = self._insert(schema.kv).values(name=name, value=value, updated_at=self._clock())
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
        )
        with self._write("write a value") as conn:
            conn.execute(statement)

    # -- hand-back (strangler/ledger/hand_back.py) ----------------------------------------

    def hand_back_candidates(self) -> list[str]:
        """In-flight instant orders not past payment (they may go back), oldest first."""
        with self._read("find in-flight instant orders") as conn:
            return hand_back.candidates(conn)

    def is_hand_back_candidate(self, order_id: str) -> bool:
        """Whether ``order_id`` is still an in-flight instant order not past payment."""
        with self._read("check an in-flight order") as conn:
            return hand_back.is_candidate(conn, order_id)

    def lease_for_hand_back(
        self, order_id: str, owner: str, *, lease_seconds: float, now: datetime | None = None
    ) -> bool:
        """Lease a hand-back candidate to ``owner`` unless a worker holds it (False then).

        False too when the order is no longer a candidate. Release it with
        :meth:`release_lease`.
        """
        now = now or self._clock()
        expires = now + timedelta(seconds=lease_seconds)
        with self._write("lease an order to hand it back") as conn:
            return hand_back.take_lease(conn, order_id, owner, now=now, expires=expires)

    # -- retention (strangler/ledger/archive.py) ------------------------------------------

    def expired_orders(self, *, received_before: datetime, limit: int) -> list[str]:
        """Up to ``limit`` terminal orders received before ``received_before``, oldest first."""
        with self._read("find expired orders") as conn:
            return archive.expired(conn, received_before=received_before, limit=limit)

    def archive_records(self, order_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Each order's row with its steps, transitions and comparisons, to archive.

        One read-only snapshot; see :func:`strangler.ledger.archive.records` for the shape.
        """
        with self._read("read expired orders") as conn:
            return archive.records(conn, order_ids)

    def delete_terminal(self, order_ids: Sequence[str]) -> None:
        """Delete these terminal orders and everything recorded about them (one transaction)."""
        if not order_ids:
            return
        with self._write("delete archived orders") as conn:
            archive.delete_terminal(conn, order_ids)

    # -- comparisons (strangler/ledger/comparisons.py) ----------------------------------

    def comparison_record(self, order_id: str) -> OrderRecord | None:
        """What the ledger has about an order for comparing it; None when unknown."""
        with self._read("read an order to compare") as conn:
            return comparison_store.load_record(conn, order_id)

    def record_comparison(self, comparison: Comparison) -> bool:
        """Store a comparison once per (order_id, kind); True when new (idempotent)."""
        with self._write("record a comparison") as conn:
            return comparison_store.insert_comparison(conn, comparison)

    def due_for_comparison(
        self, kind: ComparisonKind, *, older_than: datetime, limit: int
    ) -> list[str]:
        """Orders without a stored comparison of ``kind`` that may be decided now."""
        with self._read("find orders to compare") as conn:
            return comparison_store.due_for_comparison(
                conn, kind, older_than=older_than, limit=limit
            )

    # -- rollout events -----------------------------------------------------------------

    def record_rollout_event(self, event: RolloutEventFields) -> bool:
        """Keep a rollout change (idempotent on its time and flag revision); True when new.

        ``event`` is a RolloutEvent or anything with its fields, such as a RolloutChange.
        """
        statement = (
            self._insert(schema.rollout_events)
            .values(
                at=event.at,
                actor=event.actor,
                from_rollout=event.from_rollout,
                to_rollout=event.to_rollout,
                reason=event.reason,
                flag_revision=event.flag_revision,
                kind=event.kind,
                enabled=event.enabled,
                instant_weight=event.instant_weight,
                shadow_weight=event.shadow_weight,
                stage=event.stage,
                changed=event.changed,
                no_evidence=event.no_evidence,
            )
            .on_conflict_do_nothing(index_elements=["at", "flag_revision"])
            .returning(schema.rollout_events.c.id)
        )
        with self._write("record a rollout event") as conn:
            return conn.execute(statement).first() is not None

    def rollout_events(self) -> list[RolloutEvent]:
        """Every rollout change, oldest first."""
        table = schema.rollout_events
        statement = sa.select(table).order_by(table.c.at, table.c.id)
        with self._read("read rollout events") as conn:
            rows = conn.execute(statement).mappings().all()
        return [
            RolloutEvent(
                at=row["at"],
                actor=row["actor"],
                from_rollout=row["from_rollout"],
                to_rollout=row["to_rollout"],
                reason=row["reason"],
                flag_revision=row["flag_revision"],
                kind=row["kind"],
                enabled=row["enabled"],
                instant_weight=row["instant_weight"],
                shadow_weight=row["shadow_weight"],
                stage=row["stage"],
                changed=row["changed"],
                no_evidence=bool(row["no_evidence"]),
            )
            for row in rows
        ]

    # -- reads ----------------------------------------------------------------------------

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        thresholds: Thresholds | None = None,
        examples: int = 10,
        now: datetime | None = None,
    ) -> Report:
        """The comparison report over orders routed in ``[since, until)`` (until: now).

        Read in one read-only snapshot (strangler.ledger.report_queries). Raises
        ValueError for a bad window (see ``check_window``), LedgerError when the ledger
        cannot be read.
        """
        from strangler.ledger.report_queries import load_report  # noqa: PLC0415 (report models load on first use)

        with self._guard, self._translated("read the report"):
            return load_report(
                self._engine,
                since=since,
                until=until,
                thresholds=thresholds,
                examples=examples,
                now=now,
            )

    def duration_histogram(self) -> list[DurationBuckets]:
        """Processing times of every order ever ended, per path and outcome.

        In the buckets ``durations.ORDER_BUCKETS_S``, with the same seconds to terminal
        as the report's; kept as orders end (strangler.ledger.tally), so a read costs a
        few dozen rows and archiving takes nothing away.
        """
        with self._read("read the processing times") as conn:
            return tally.histogram(conn)

    def ops_figures(self) -> OpsFigures:
        """Backlog, in-flight orders, gate decisions, role heartbeats and recent comparisons.

        One read-only snapshot of bounded aggregate queries (strangler.ledger.ops_queries).
        """
        with self._read("read the alerting figures") as conn:
            return load_ops_figures(conn, now=self._clock())

    def story(self, order_id: str) -> dict[str, Any] | None:
        """The JSON story of one order (see docs/ledger.md), or None when unknown."""
        with self._read("read an order's story") as conn:
            order = conn.execute(sa.select(_orders).where(_orders.c.order_id == order_id)).first()
            if order is None:
                return None
            steps = conn.execute(
                sa.select(_steps)
                .where(_steps.c.order_id == order_id)
                .order_by(_steps.c.started_at, _steps.c.path, _steps.c.seq, _steps.c.id)
            ).mappings()
            rows = conn.execute(
                sa.select(_transitions).where(_transitions.c.order_id == order_id)
            ).mappings()
            return build_story(order._mapping, list(steps), moves.complete(order._mapping, rows))

    def backlog(self) -> int:
        """How many orders are not yet terminal."""
        statement = sa.select(sa.func.count()).where(_orders.c.terminal_at.is_(None))
        with self._read("count the backlog") as conn:
            return int(conn.execute(statement).scalar_one())

    def counts(self) -> LedgerCounts:
        """Orders per path and status, hand-offs, backlog and rejected bodies.

        The orders' figures come from one pass over an index (statements.ORDER_COUNTS).
        """
        by_path_status: Counter[tuple[str, str]] = Counter()
        handoffs: Counter[str] = Counter()
        by_source: Counter[str] = Counter()
        instant_errors = 0
        with self._read("count orders") as conn:
            for row in conn.execute(statements.ORDER_COUNTS):
                n = int(row.n)
                by_path_status[(row.path or "undecided", row.status)] += n
                by_source[row.source] += n
                if row.handoff is not None:
                    handoffs[row.handoff] += n
                instant_errors += int(row.instant_errors)
            queue = conn.execute(
                sa.select(sa.func.count()).where(_orders.c.needs_dispatch.is_(True))
            ).scalar_one()
            rejected = conn.execute(
                sa.select(sa.func.count()).select_from(schema.rejected_intake)
            ).scalar_one()
            unknown = conn.execute(
                sa.select(schema.kv.c.value).where(schema.kv.c.name == UNKNOWN_TO_LEGACY_KEY)
            ).scalar()
        return LedgerCounts(
            total=sum(by_path_status.values()),
            backlog=sum(n for (_, status), n in by_path_status.items() if not _terminal(status)),
            dispatch_queue=int(queue),
            rejected=int(rejected),
            by_path_status=dict(by_path_status),
            handoffs=dict(handoffs),
            by_source=dict(by_source),
            unknown_to_legacy=int(json.loads(unknown)["count"]) if unknown else 0,
            instant_errors=instant_errors,
        )

    def probe(self) -> None:
        """Check the ledger answers a read and would take writes, without waiting on writers.

        The read runs in a read-only snapshot. Beside it, what would refuse every write
        without a write being tried: a PostgreSQL server in recovery (a standby, say after
        a failover left this URL on the old primary) or set to read-only transactions, or
        a SQLite file on a file system mounted read-only. Raises LedgerError naming which.
        """
        database = self.sqlite_file
        if database is not None and os.statvfs(database.parent).f_flag & os.ST_RDONLY:
            raise self._refusing_writes(
                f"its folder {database.parent} is on a read-only file system"
            )
        with self._read("read the ledger") as conn:
            conn.execute(sa.select(schema.kv.c.name).limit(1)).all()
            if self._engine.dialect.name == "postgresql":
                in_recovery, read_only = conn.execute(_WRITABLE_POSTGRES).one()
                if in_recovery:
                    raise self._refusing_writes("the server is in recovery (a standby)")
                if read_only == "on":
                    raise self._refusing_writes("default_transaction_read_only is on")

    def _refusing_writes(self, why: str) -> LedgerError:
        return LedgerError(why, operation="take writes", url=self._url)

    def ping(self) -> None:
        """Check the ledger is writable (one small write); raises LedgerError when not."""
        self.set_value("ping", self._clock().isoformat())

    # -- internals --------------------------------------------------------------------------

    def _move(
        self,
        conn: WriteConnection,
        order_id: str,
        status: OrderStatus,
        *,
        reason: str | None,
        at: datetime,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        values = statements.params(order_id=order_id, at=at, now=self._clock(), **(extra or {}))
        moved = conn.execute(statements.move(status, tuple(sorted(extra or {}))), values).rowcount
        if moved == 1:
            conn.execute(
                statements.INSERT_TRANSITION,
                {"order_id": order_id, "status": status.value, "at": at, "reason": reason},
            )
            return True
        if (
            conn.execute(statements.ORDER_BY_ID, statements.params(order_id=order_id)).first()
            is None
        ):
            raise LedgerError(
                f"unknown order {order_id!r}", operation=f"move an order to {status}", url=self._url
            )
        return False

    def _pin(
        self,
        conn: WriteConnection,
        order_id: str,
        decision: Decision,
        *,
        now: datetime,
        release_owner: str | None,
        start_running: bool,
    ) -> bool:
        """Pin ``decision`` in ``conn``'s transaction, as :meth:`pin_decision` describes;
        True when pinned now, False when the order had a path (nothing changed)."""
        values = _pin_values(order_id, decision, now)
        if (
            start_running
            and isinstance(conn, DriverConnection)
            and decision.path not in _FOLLOWED_PATHS
            and conn.execute(statements.PIN_AND_START_UNHANDED, values).rowcount == 1
        ):
            # On SQLite, usually one UPDATE with no row to return: an order still
            # received, never handed off, so not followed (nothing for _end_as below).
            if release_owner is not None:
                _release_as_done(conn, order_id, release_owner, now)
            return True
        # Usually one UPDATE pins, routes and starts an order still received.
        started = self._pin_and_start(conn, values) if start_running else None
        pinned_now = started or conn.execute(statements.PIN_DECISION, values).first()
        if pinned_now is None:
            return False
        if not start_running:
            self._move(conn, order_id, OrderStatus.ROUTED, reason=decision.reason, at=now)
        elif started is None:
            self._route_and_start(conn, order_id, reason=decision.reason, at=now)
        followed = decision.path in _FOLLOWED_PATHS or pinned_now.handoff is not None
        if followed and pinned_now.terminal_at is None:
            self._end_as(conn, order_id, pinned_now.legacy_status, pinned_now.legacy_terminal_at)
        if release_owner is not None:
            _release_as_done(conn, order_id, release_owner, now)
        return True

    def _pin_and_start(self, conn: WriteConnection, values: dict[str, object]) -> Any:
        """Pin, route and start an order still ``received``: its row (as PIN_DECISION's),
        or None when it was not ``received`` or had a path. The orders row holds both
        moves, the decision's reason with them (strangler.ledger.moves)."""
        return conn.execute(statements.PIN_AND_START, values).first()

    def _route_and_start(
        self, conn: WriteConnection, order_id: str, *, reason: str, at: datetime
    ) -> None:
        """Move an order just pinned with ``reason`` to ``routed`` and on to ``running``,
        both at ``at``.

        One statement for an order still ``received`` (the usual case: the orders row holds
        both moves, ``reason`` as its ``decision_reason``; strangler.ledger.moves), else
        one move at a time, each skipped when the order is there already or beyond.
        """
        values = statements.params(order_id=order_id, at=at, now=self._clock())
        if conn.execute(statements.ROUTE_AND_START, values).rowcount == 1:
            return
        self._move(conn, order_id, OrderStatus.ROUTED, reason=reason, at=at)
        self._move(conn, order_id, OrderStatus.RUNNING, reason=None, at=at)

    def _end_as_legacy_did(self, conn: WriteConnection, order_id: str) -> bool:
        """End a followed order the legacy app reported terminal; True when it ended now."""
        row = conn.execute(statements.LEGACY_END, statements.params(order_id=order_id)).first()
        if row is None:
            return False
        return self._end_as(conn, order_id, row.legacy_status, row.legacy_terminal_at)

    def _end_as(
        self,
        conn: WriteConnection,
        order_id: str,
        legacy_status: str | None,
        legacy_terminal_at: datetime | None,
    ) -> bool:
        """End a followed open order as the legacy app reported, when that is terminal."""
        if legacy_status not in _TERMINAL_VALUES:
            return False
        status = OrderStatus(legacy_status)
        return self._move(
            conn,
            order_id,
            status,
            reason=f"legacy app reports {status}",
            at=legacy_terminal_at or self._clock(),
            extra={"outcome": status.value},
        )

    def _insert_steps(self, conn: WriteConnection, steps: Sequence[tuple[StepResult, int]]) -> int:
        if not steps:
            return 0
        # One executemany (pipelined by psycopg: one round trip for all the steps); both
        # drivers count what it inserted, skipped duplicates aside.
        if isinstance(conn, DriverConnection):
            rows = sqlite_steps.step_params(steps, self._clock())
            insert = statements.INSERT_STEP_QUIETLY
            return conn.execute_rows(insert, statements.STEP_COLUMNS, rows).rowcount
        return conn.execute(
            statements.INSERT_STEP_QUIETLY, statements.step_rows(steps, self._clock())
        ).rowcount

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise self._translated_error(exc, operation) from exc

    def _translated_error(self, exc: Exception, operation: str) -> LedgerError:
        """The LedgerError a database error of ``operation`` is raised as."""
        cause = getattr(exc, "orig", None) or exc
        return LedgerError(f"{type(cause).__name__}: {cause}", operation=operation, url=self._url)

    @contextmanager
    def _write_turn(self, operation: str, deadline: float) -> Iterator[None]:
        """This process's turn to write, waited for until ``deadline`` at most."""
        if self._turns is not None:
            try:
                self._turns.take(deadline)
            except TurnTimeout:
                raise self._turn_timed_out(operation) from None
            try:
                yield
            finally:
                self._turns.give_back()
            return
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self._turn_timed_out(operation)
        try:
            yield
        finally:
            lock.release()

    def _turn_timed_out(self, operation: str) -> LedgerError:
        return LedgerError(
            "this process's other writes held the ledger for the whole busy timeout "
            f"({self._busy_timeout_s:g} s)",
            operation=operation,
            url=self._url,
        )

    def _grouped(self, operation: str, work: Callable[[WriteConnection], _R]) -> _R:
        """``work(conn)`` in a write transaction; on a SQLite file, one that writes queued
        for this process's turn share (strangler.ledger.group_commit)."""
        if self._turns is None:
            with self._write(operation) as conn:
                return work(conn)
        deadline = time.monotonic() + self._busy_timeout_s
        try:
            return self._turns.run(work, deadline)
        except TurnTimeout:
            raise self._turn_timed_out(operation) from None
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise self._translated_error(exc, operation) from exc

    @contextmanager
    def _write(self, operation: str) -> Iterator[WriteConnection]:
        deadline = time.monotonic() + self._busy_timeout_s
        with self._write_turn(operation, deadline), self._translated(operation):
            if self._driver is not None:
                with self._driver.transaction(deadline=deadline) as driver:
                    yield driver
                return
            with self._engine.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def _alone(self, operation: str) -> Iterator[sa.Connection]:
        """A PostgreSQL connection in autocommit, for a write that is one statement: it
        commits on its own, without BEGIN and COMMIT round trips."""
        with self._translated(operation), self._engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def _read(self, operation: str) -> Iterator[sa.Connection]:
        with self._guard, self._translated(operation), read_snapshot(self._engine) as conn:
            yield conn


def _pin_values(order_id: str, decision: Decision, now: datetime) -> dict[str, object]:
    """The parameters of the statements pinning ``decision`` on an order at ``now``."""
    return statements.params(
        order_id=order_id,
        path=decision.path.value,
        variant=decision.variant,
        rollout=decision.rollout,
        flag_revision=decision.flag_revision,
        decision_reason=decision.reason,
        now=now,
    )


def _release_as_done(conn: WriteConnection, order_id: str, owner: str, now: datetime) -> None:
    """Release ``owner``'s lease with nothing left to do (left as it is if not held)."""
    done = statements.params(
        order_id=order_id, owner=owner, needs_dispatch=False, retry_at=now, now=now, error=None
    )
    conn.execute(statements.RELEASE_LEASE, done)


def _notify_refused(exc: LedgerError) -> bool:
    """True when PostgreSQL refused the intake's NOTIFY: its queue is full (SQLSTATE 54000).

    The queue fills only while a listening session stops reading (8 GB by default); the
    error comes at commit, with the order's INSERT rolled back.
    """
    cause = getattr(exc.__cause__, "orig", None)
    return getattr(cause, "sqlstate", None) == _PROGRAM_LIMIT_EXCEEDED


def _terminal(status: str) -> bool:
    return status in _TERMINAL_VALUES
