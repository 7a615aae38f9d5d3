"""SQLite writes on the driver connection store and read what SQLAlchemy would."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite as sqlite_dialect

from strangler.exceptions import LedgerError
from strangler.ledger import SqlLedger, leases, ledger_from_url, sqlite_steps, statements
from strangler.ledger.driver import (
    DriverWrites,
    _bind_processor,
    _Compiled,
    _remembered,
    utc_text,
)
from strangler.ledger.schema import UTCDateTime, orders
from strangler.orders import Decision, OrderStatus, Route, StepResult
from tests.unit.ledger.support import make_decision, make_order


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A SQLite ledger in a temporary file."""
    opened = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield opened
    opened.close()


@pytest.fixture
def writes(ledger: SqlLedger) -> Iterator[DriverWrites]:
    """A driver connection of its own on the ledger's database."""
    driver = DriverWrites(ledger.engine, busy_timeout_s=1.0)
    yield driver
    driver.close()


def _row(path: Path, order_id: str) -> tuple[str, ...]:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return tuple(row)


def test_driver_row_equals_the_sqlalchemy_row(ledger: SqlLedger, tmp_path: Path) -> None:
    """The same order written both ways is stored identically (times, JSON, booleans)."""
    fixed = ledger._clock()
    ledger._clock = lambda: fixed  # one instant for both rows
    ledger.record_received(make_order("a", user_guid="u", city="nyc"), source="s")
    ledger._driver = None  # the SQLAlchemy path
    ledger.record_received(make_order("b", user_guid="u", city="nyc"), source="s")
    driver, through_sa = (_row(tmp_path / "ledger.sqlite3", o) for o in ("a", "b"))
    assert (driver[1].replace('"a"', '"b"'), *driver[2:]) == through_sa[1:]
    assert (ledger.story("a") or {})["status"] == "received"


def test_returned_rows_are_converted_by_the_column_types(
    ledger: SqlLedger, writes: DriverWrites
) -> None:
    """RETURNING rows come back as SQLAlchemy reads them: aware datetimes, JSON, booleans."""
    ledger.record_received(make_order("o-1", unit_id="u-9"), source="s")
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    values = statements.params(now=now, limit=5, owner="me", expires=now + timedelta(days=3650))
    # A claim returning the whole row (the ledger's own claim returns fewer columns).
    whole_row = (
        orders.update()
        .where(orders.c.order_id == "o-1")
        .values(
            lease_owner=sa.bindparam("p_owner", type_=orders.c.lease_owner.type),
            lease_expires_at=sa.bindparam("p_expires", type_=orders.c.lease_expires_at.type),
            attempts=orders.c.attempts + 1,
        )
        .returning(*orders.c)
    )
    with writes.transaction() as conn:
        claimed = list(conn.execute(whole_row, values))
    with ledger.engine.connect() as conn:
        through_sa = conn.execute(statements.ORDER_BY_ID, statements.params(order_id="o-1")).one()
    row = claimed[0]._mapping
    assert row == {**through_sa._mapping, "lease_owner": "me"} | {
        "lease_expires_at": row["lease_expires_at"],
        "attempts": 1,
    }
    assert row["notification"]["unit_id"] == "u-9"
    assert row["needs_dispatch"] is True
    assert row["lease_expires_at"] == now + timedelta(days=3650)


def test_an_expanding_in_and_executemany(ledger: SqlLedger, writes: DriverWrites) -> None:
    """``IN`` lists are rendered per call; a list of parameters runs as one executemany."""
    for order_id in ("a", "b", "c"):
        ledger.record_received(make_order(order_id), source="s")
    update = orders.update().where(orders.c.order_id == sa.bindparam("id")).values(attempts=7)
    with writes.transaction() as conn:
        changed = conn.execute(update, [{"id": "a"}, {"id": "b"}]).rowcount
        found = conn.execute(
            sa.select(orders.c.order_id).where(
                orders.c.order_id.in_(sa.bindparam("ids", expanding=True)),
                orders.c.attempts == 7,
            ),
            {"ids": ["a", "b", "c"]},
        ).scalars()
    assert (changed, sorted(found)) == (2, ["a", "b"])


def test_a_failing_statement_rolls_the_transaction_back(
    ledger: SqlLedger, writes: DriverWrites
) -> None:
    """Nothing of a transaction that raised is kept, and the connection works on."""
    ledger.record_received(make_order("a"), source="s")
    update = orders.update().where(orders.c.order_id == "a").values(attempts=5)

    def update_then_fail() -> None:
        with writes.transaction() as conn:
            conn.execute(update)
            conn.execute(orders.insert(), {"order_id": "a"})

    with pytest.raises(sqlite3.IntegrityError):
        update_then_fail()
    with writes.transaction() as conn:
        attempts = conn.execute(sa.select(orders.c.attempts)).scalars()
    assert attempts == [0]


def test_duplicate_changes_nothing(ledger: SqlLedger) -> None:
    """A second insert of one order_id reports a duplicate and keeps the first row."""
    first = ledger.record_received(make_order("o-1", unit_id="first"), source="a")
    second = ledger.record_received(make_order("o-1", unit_id="second"), source="b")
    story = ledger.story("o-1") or {}
    assert (first, second, story["notification"]["unit_id"]) == (True, False, "first")


def test_driver_error_is_a_ledger_error_and_the_next_call_reconnects(
    ledger: SqlLedger, tmp_path: Path
) -> None:
    """A failing INSERT raises LedgerError naming the operation; later calls work again."""
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    with pytest.raises(LedgerError, match="could not record a received order"):
        ledger.record_received(make_order("o-1"), source="s")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute("DROP TRIGGER refuse")
    assert ledger.record_received(make_order("o-1"), source="s") is True


def test_refuses_other_databases() -> None:
    """DriverWrites is for SQLite only and says so."""
    engine = sa.create_engine("postgresql+psycopg://u@h/db")
    with pytest.raises(ValueError, match="SQLite only"):
        DriverWrites(engine)


@pytest.mark.parametrize("alone", [True, False], ids=["statement", "transaction"])
def test_waits_for_another_process_lock_then_writes(
    ledger: SqlLedger, tmp_path: Path, alone: bool
) -> None:
    """While another connection holds the write lock the write retries, then succeeds."""
    other = sqlite3.connect(
        tmp_path / "ledger.sqlite3", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def commit_soon() -> None:
        released.wait(0.05)
        other.execute("COMMIT")

    committer = threading.Thread(target=commit_soon)
    committer.start()
    try:
        if alone:
            assert ledger.record_received(make_order("o-1"), source="s") is True
        else:
            ledger.set_value("k", "v")
            assert ledger.get_value("k") == "v"
    finally:
        released.set()
        committer.join()
        other.close()


def test_a_lock_held_past_the_busy_timeout_is_a_driver_error(
    ledger: SqlLedger, tmp_path: Path
) -> None:
    """A lock that outlasts the busy timeout ends the wait with SQLITE_BUSY."""
    writes = DriverWrites(ledger.engine, busy_timeout_s=0.01)
    other = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"), writes.transaction():
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
        writes.close()


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])
    ),
)
def test_utc_text_is_what_the_column_type_binds(moment: datetime) -> None:
    """The driver's one-step datetime text equals UTCDateTime's conversion then SQLite's."""
    dialect = sqlite_dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert utc_text(moment) == process(moment)


@pytest.mark.parametrize(
    "step",
    [
        timedelta(days=365),
        timedelta(days=31),
        timedelta(days=1),
        timedelta(hours=1),
        timedelta(minutes=1),
        timedelta(seconds=1),
        timedelta(microseconds=1),
        timedelta(days=-1, microseconds=-1),
    ],
    ids=["year", "month", "day", "hour", "minute", "second", "microsecond", "back"],
)
def test_utc_text_of_moments_one_after_another(step: timedelta) -> None:
    """Moments one after another, each a step apart, each get the column type's text (the
    text of the second before is never taken for the next)."""
    dialect = sqlite_dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    moments = [datetime(2030, 1, 15, 23, 59, 59, 999_998, tzinfo=UTC) + step * n for n in range(4)]
    assert [process(moment) for moment in moments] == [utc_text(moment) for moment in moments]


def test_a_claim_updates_the_due_orders_by_their_keys(ledger: SqlLedger) -> None:
    """SQLite's claim looks up the orders it claims by key, not by walking every due order
    (a cost that grew with the backlog: 1.1 ms of CPU per claim with 3,000 orders due)."""
    now = datetime.now(UTC)
    values = statements.params(now=now, limit=4, owner="me", expires=now)
    compiled = _Compiled(statements.CLAIM_DUE_SQLITE, ledger.engine.dialect, values)
    sql, params = compiled.prepare(values)
    with ledger.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert plan[0].startswith("SEARCH orders USING"), plan
    assert plan[0].endswith("(order_id=?)"), plan


def test_a_claim_leases_what_the_whole_row_says(ledger: SqlLedger) -> None:
    """SQLite's claim returns only the columns a LeasedOrder is built from: the orders it
    gives are those the whole row gives (decision, error and attempts from an earlier try)."""
    ledger.record_received(make_order("o-1"), source="api")
    ledger.record_received(make_order("o-2"), source="api")
    [first] = ledger.claim_due("me", limit=1, lease_seconds=30)
    ledger.pin_decision(
        first.order_id,
        Decision(path=Route.INSTANT, variant="on", rollout=50, flag_revision="r1", reason="why"),
    )
    past = datetime.now(UTC) - timedelta(seconds=1)
    ledger.release_lease(first.order_id, "me", done=False, retry_at=past, error="it broke")
    claimed = ledger.claim_due("me", limit=2, lease_seconds=30)
    with ledger.engine.connect() as conn:
        rows = {row.order_id: row._mapping for row in conn.execute(sa.select(orders))}
    assert len(claimed) == 2
    assert claimed == [leases._leased(rows[order.order_id]) for order in claimed]
    again = next(order for order in claimed if order.order_id == first.order_id)
    assert (again.attempts, again.last_error, again.decision) == (
        2,
        "it broke",
        leases.decision_of(rows[first.order_id]),
    )
    assert again.decision is not None


def _ledger_statements() -> list[sa.ClauseElement]:
    built = [value for value in vars(statements).values() if isinstance(value, sa.ClauseElement)]
    for status in OrderStatus:
        if status.is_terminal:
            built.append(statements.finish_held(status))
        if status is not OrderStatus.RECEIVED and status is not OrderStatus.FELL_BACK:
            built.append(statements.move(status, ()))
    return built


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_parameters_are_filled_as_sqlalchemy_fills_them(data: st.DataObject) -> None:
    """Each ledger statement's positional parameters, filled from a call's values, are
    those of SQLAlchemy's construct_params: the caller's where given, else the
    statement's own; a missing one is SQLAlchemy's error."""
    dialect = sqlite_dialect()
    statement = data.draw(st.sampled_from(_ledger_statements()))
    probe = _Compiled(statement, dialect, {})
    if probe.fill is None or probe.expanding:
        return
    names = list(probe.names)
    given_names = data.draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    values = {name: object() for name in given_names}
    compiled = _Compiled(statement, dialect, values)
    assert compiled.fill is not None
    try:
        merged = compiled.compiled.construct_params(values)
    except sa.exc.InvalidRequestError:
        with pytest.raises(KeyError):
            compiled.fill(values)
        return
    assert compiled.fill(values) == [merged[name] for name in compiled.names]


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(0))])
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.builds(
            StepResult,
            order_id=st.text(min_size=1, max_size=8),
            path=st.sampled_from(Route),
            step=st.sampled_from(["claim", "fraud_scan", "authorize_payment", "fulfill"]),
            decision=st.none() | st.text(max_size=8),
            started_at=st.datetimes(timezones=_ZONES),
            finished_at=st.datetimes(timezones=_ZONES),
            payload=st.dictionaries(st.text(max_size=6), _JSON_VALUES, max_size=4).map(
                lambda payload: payload if len(payload) % 2 else MappingProxyType(payload)
            ),
            error=st.none() | st.text(max_size=8),
            dry_run=st.booleans(),
        ),
        min_size=1,
        max_size=5,
    ),
    recorded_at=st.datetimes(timezones=_ZONES),
)
def test_step_rows_are_the_parameters_the_column_types_bind(
    steps: list[StepResult], recorded_at: datetime
) -> None:
    """sqlite_steps' positional rows are exactly what the driver's general path binds for
    the same rows as dicts (the column types' conversions), in the statement's order."""
    dialect = sqlite_dialect()
    pairs = [(step, seq) for seq, step in enumerate(steps)]
    as_dicts = statements.step_rows(pairs, recorded_at)
    compiled = _Compiled(statements.INSERT_STEP_QUIETLY, dialect, as_dicts[0])
    assert compiled.names == statements.STEP_COLUMNS
    expected = [compiled.prepare(row)[1] for row in as_dicts]
    assert sqlite_steps.step_params(pairs, recorded_at) == expected
    # And as SQLAlchemy's own processors convert them, one parameter at a time.
    merged = [compiled.compiled.construct_params(row) for row in as_dicts]
    through_sa = [
        tuple(
            value if process is None else process(value)
            for value, process in (
                (params[name], _plain_processor(compiled, name)) for name in compiled.names
            )
        )
        for params in merged
    ]
    assert expected == through_sa


def _plain_processor(compiled: _Compiled, name: str) -> Any:
    bind = compiled.compiled.binds[name]
    return bind.type.dialect_impl(compiled.compiled.dialect).bind_processor(
        compiled.compiled.dialect
    )


def test_step_rows_written_positionally_read_back_as_recorded(ledger: SqlLedger) -> None:
    """A finish's step rows (written by sqlite_steps) read back as the steps recorded."""
    ledger.record_received(make_order("a"), source="s")
    ledger.pin_decision("a", make_decision(Route.INSTANT), start_running=True)
    now = datetime.now(UTC)
    steps = [
        StepResult("a", Route.INSTANT, "claim", "claimed", now, now, {"n": 1}),
        StepResult("a", Route.INSTANT, "fulfill", None, now, now, {"é": [1.5, None]}, "boom"),
    ]
    assert ledger.finish(
        "a", OrderStatus.FULFILLED, [(s, 0) for s in steps], at=now, release_owner="x"
    )
    story = ledger.story("a") or {}
    recorded = [(s["step"], s["decision"], s["payload"], s["error"]) for s in story["steps"]]
    assert recorded == [
        ("claim", "claimed", {"n": 1}, None),
        ("fulfill", None, {"é": [1.5, None]}, "boom"),
    ]


def test_execute_rows_refuses_parameters_in_another_order(writes: DriverWrites) -> None:
    """execute_rows takes values in the statement's own order of parameters, and says so."""
    with writes.transaction() as conn, pytest.raises(ValueError, match="parameters are"):
        conn.execute_rows(
            statements.INSERT_STEP_QUIETLY, tuple(reversed(statements.STEP_COLUMNS)), []
        )


def test_a_name_bound_twice_is_converted_once_into_each_place() -> None:
    """PIN_AND_START binds ``now`` in three columns: one conversion, the same text in each."""
    dialect = sqlite_dialect()
    now = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    values = statements.params(
        order_id="a",
        path="instant",
        variant="v",
        rollout=5,
        flag_revision="r",
        decision_reason="why",
        now=now,
    )
    compiled = _Compiled(statements.PIN_AND_START, dialect, values)
    assert compiled.copies  # the repeats are copied, not converted again
    _, params = compiled.prepare(values)
    texts = [params[i] for i, name in enumerate(compiled.names) if name == "p_now"]
    assert texts == ["2026-01-02 01:04:05.000006"] * 3


def test_the_last_datetime_is_remembered_by_identity_not_by_value() -> None:
    """Two datetimes equal as values (one instant, two zones, or a fold) are converted each
    on its own: only the very same object is taken from memory."""
    seen: list[datetime] = []

    def convert(value: datetime) -> str:
        seen.append(value)
        return value.isoformat()

    remembered = _remembered(convert)
    first = datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    same_instant = first.astimezone(timezone(timedelta(hours=-4)))
    assert first == same_instant
    assert remembered(first) == first.isoformat()
    assert remembered(first) == first.isoformat()
    assert remembered(same_instant) == same_instant.isoformat()
    assert seen == [first, same_instant]


@pytest.mark.parametrize("value", [{"a": [1, None]}, None, sa.JSON.NULL, [1, 2], "text"])
def test_json_binds_as_the_column_type_binds(value: Any) -> None:
    """A JSON column's value binds as SQLAlchemy's processor binds it (dicts by the shortcut,
    None and JSON.NULL by the type's own rules)."""
    dialect = sqlite_dialect()
    type_ = orders.c.notification.type
    ours = _bind_processor(type_, dialect)
    theirs = type_.dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert theirs is not None
    assert ours(value) == theirs(value)


def test_an_instant_pin_on_an_order_handed_off_still_follows_it(ledger: SqlLedger) -> None:
    """The claim's pin without returning a row applies only to an order never handed off;
    one that was is pinned as before, and ends as the legacy app says it ended."""
    ledger.record_received(make_order("a"), source="s")
    ended = datetime(2026, 1, 2, tzinfo=UTC)
    with ledger.engine.begin() as conn:
        conn.execute(
            orders.update()
            .where(orders.c.order_id == "a")
            .values(handoff="legacy_owned", legacy_status="fulfilled", legacy_terminal_at=ended)
        )
    [claimed] = ledger.claim_due("w", limit=1, lease_seconds=30, decide=lambda _o: make_decision())
    assert claimed.pinned_now
    story = ledger.story("a") or {}
    assert story["status"] == "fulfilled"


def test_step_rows_refuse_what_the_column_types_refuse() -> None:
    """A naive datetime or a dry_run that is not a bool is refused, not stored."""
    now = datetime.now(UTC)
    naive = StepResult("a", Route.INSTANT, "claim", "claimed", now.replace(tzinfo=None), now)
    with pytest.raises(ValueError, match="naive"):
        sqlite_steps.step_params([(naive, 0)], now)
    not_a_bool = StepResult("a", Route.INSTANT, "claim", None, now, now, dry_run=None)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        sqlite_steps.step_params([(not_a_bool, 0)], now)
