"""Group commit: writes queued for a process's turn share one commit, each with its own outcome."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from strangler.ledger import schema
from strangler.ledger.driver import DriverConnection, DriverWrites
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.group_commit import TurnTimeout, WriteTurns
from strangler.ledger.migrate import ensure_schema
from tests.helpers import wait_until
from tests.unit.ledger.support import T0
from tests.unit.ledger.test_claim_pins import Statements

Work = Callable[[DriverConnection], Any]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def statements(engine: sa.Engine) -> Statements:
    """Counts the engine's write transactions (set before its first connection)."""
    counted = Statements(engine)
    ensure_schema(engine)
    return counted


@pytest.fixture
def driver(engine: sa.Engine, statements: Statements) -> Iterator[DriverWrites]:
    driver = DriverWrites(engine)
    yield driver
    driver.close()


@pytest.fixture
def turns(driver: DriverWrites) -> WriteTurns[DriverConnection]:
    return WriteTurns(
        lambda deadline: driver.transaction(deadline=deadline),
        DriverConnection.savepoint,
        lambda conn: conn.in_transaction,
    )


def put(name: str) -> Work:
    """A write of one kv row; its result is how many rows it inserted."""
    statement = sa.insert(schema.kv).values(name=name, value="v", updated_at=T0)
    return lambda conn: conn.execute(statement).rowcount


def failing_after(name: str, error: Exception) -> Work:
    """A write of one kv row that then raises ``error``: its row must not stay."""

    def work(conn: DriverConnection) -> Any:
        put(name)(conn)
        raise error

    return work


def names(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(schema.kv.c.name)).scalars())


class Writers:
    """Writes started on threads, each with its own outcome (result or exception)."""

    def __init__(self, turns: WriteTurns[DriverConnection]) -> None:
        self.turns = turns
        self.outcomes: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, work: Work, deadline_s: float = 10.0) -> None:
        def write() -> None:
            try:
                self.outcomes[name] = self.turns.run(work, time.monotonic() + deadline_s)
            except Exception as exc:  # the test looks at each writer's own outcome
                self.outcomes[name] = exc

        thread = threading.Thread(target=write, name=f"writer-{name}")
        self._threads.append(thread)
        thread.start()
        # Queued in the order started: each one waits behind the turn held by the test.
        wait_until(lambda: self.turns.waiting == len(self._threads), 5, f"{name} to queue")

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10)


def test_writes_queued_for_the_turn_share_one_commit(
    engine: sa.Engine, statements: Statements, turns: WriteTurns[DriverConnection]
) -> None:
    """Eight writers queued behind a turn are committed by one transaction (eight before),
    each getting its own result."""
    writers = Writers(turns)
    turns.take(time.monotonic() + 5)
    for n in range(8):
        writers.start(f"k-{n}", put(f"k-{n}"))
    before = statements.commits
    turns.give_back()
    writers.join()
    assert statements.commits - before == 1
    assert writers.outcomes == {f"k-{n}": 1 for n in range(8)}
    assert names(engine) == {f"k-{n}" for n in range(8)}


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(failing_after("bad", ValueError("no such thing")), id="the-write-raises"),
        pytest.param(put("k-0"), id="the-database-refuses-a-duplicate-key"),
    ],
)
def test_a_failing_write_in_a_group_leaves_the_others_committed(
    engine: sa.Engine, statements: Statements, turns: WriteTurns[DriverConnection], failing: Work
) -> None:
    """One write of a group failing gets its own exception and leaves nothing behind; the
    writes before and after it in the same commit are kept."""
    writers = Writers(turns)
    turns.take(time.monotonic() + 5)
    writers.start("first", put("k-0"))  # handed the turn: it leads the group
    writers.start("failing", failing)
    writers.start("after", put("k-1"))
    before = statements.commits
    turns.give_back()
    writers.join()
    assert statements.commits - before == 1
    assert (writers.outcomes["first"], writers.outcomes["after"]) == (1, 1)
    assert isinstance(writers.outcomes["failing"], ValueError | sqlite3.IntegrityError)
    assert names(engine) == {"k-0", "k-1"}


def test_the_leaders_own_failure_passes_the_queue_on(
    engine: sa.Engine, turns: WriteTurns[DriverConnection]
) -> None:
    """The writer leading a turn fails before anyone joined its transaction: it alone gets
    the error, and the writes queued behind it commit on the next turn."""
    writers = Writers(turns)
    turns.take(time.monotonic() + 5)
    writers.start("leader", failing_after("bad", ValueError("leader fails")))
    writers.start("k-0", put("k-0"))
    writers.start("k-1", put("k-1"))
    turns.give_back()
    writers.join()
    assert str(writers.outcomes["leader"]) == "leader fails"
    assert (writers.outcomes["k-0"], writers.outcomes["k-1"]) == (1, 1)
    assert names(engine) == {"k-0", "k-1"}


def test_a_queued_write_past_its_deadline_leaves_the_queue(
    engine: sa.Engine, turns: WriteTurns[DriverConnection]
) -> None:
    """A write still queued when its deadline passes raises TurnTimeout and is never run;
    the turn then goes on as before."""
    writers = Writers(turns)
    turns.take(time.monotonic() + 5)
    writers.start("late", put("late"), deadline_s=0.05)
    wait_until(lambda: "late" in writers.outcomes, 5, "the queued write to give up")
    assert (isinstance(writers.outcomes["late"], TurnTimeout), turns.waiting) == (True, 0)
    turns.give_back()
    assert turns.run(put("k-0"), time.monotonic() + 5) == 1
    writers.join()
    assert names(engine) == {"k-0"}


def test_a_turn_taken_for_a_block_is_passed_on_in_order(
    engine: sa.Engine, driver: DriverWrites, turns: WriteTurns[DriverConnection]
) -> None:
    """A writer running its own block waits in the same queue: writes queued before it
    are run first, and it gets the turn after them, not grouped with anything."""
    order: list[str] = []
    writers = Writers(turns)
    turns.take(time.monotonic() + 5)
    writers.start("k-0", lambda conn: order.append("k-0") or put("k-0")(conn))

    def block() -> None:
        turns.take(time.monotonic() + 10)
        try:
            order.append("block")
            with driver.transaction() as conn:
                put("block")(conn)
        finally:
            turns.give_back()

    blocker = threading.Thread(target=block)
    blocker.start()
    wait_until(lambda: turns.waiting == 2, 5, "the block to queue")
    turns.give_back()
    writers.join()
    blocker.join(10)
    assert (order, names(engine)) == (["k-0", "block"], {"k-0", "block"})


def test_max_group_must_be_positive(driver: DriverWrites) -> None:
    """A group of less than one write is refused with the value named."""
    with pytest.raises(ValueError, match="max_group must be 1 or more, got 0"):
        WriteTurns(
            lambda deadline: driver.transaction(deadline=deadline),
            DriverConnection.savepoint,
            lambda conn: conn.in_transaction,
            max_group=0,
        )


def test_a_write_that_ends_the_transaction_fails_the_whole_group(
    engine: sa.Engine, turns: WriteTurns[DriverConnection]
) -> None:
    """A write whose failure ended the transaction itself (as SQLite does on a full disk)
    fails the writes of the group run so far, itself included (nothing of them is kept);
    the write after it is not run outside the transaction but on the next turn."""
    writers = Writers(turns)

    def ends_the_transaction(conn: DriverConnection) -> Any:
        put("doomed")(conn)
        conn.execute(sa.text("ROLLBACK"))  # what SQLite does on SQLITE_FULL or SQLITE_IOERR
        raise sqlite3.OperationalError("database or disk is full")

    turns.take(time.monotonic() + 5)
    writers.start("first", put("k-0"))
    writers.start("failing", ends_the_transaction)
    writers.start("after", put("k-1"))
    turns.give_back()
    writers.join()
    errors = {name: str(outcome) for name, outcome in writers.outcomes.items()}
    assert errors == {
        "first": "database or disk is full",
        "failing": "database or disk is full",
        "after": "1",
    }
    assert names(engine) == {"k-1"}
