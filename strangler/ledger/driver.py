"""The ledger's SQLite writes, run straight on the sqlite3 connection underneath.

Through SQLAlchemy a write costs about 0.06 ms of CPU per statement and 0.12 ms per
transaction (connection checkout, events, execution context, result set-up); routing one
order takes a dozen statements, so that cost capped a process at a few hundred orders a
second. Here the same SQLAlchemy statements are compiled once for SQLite and run on one
sqlite3 connection kept for writing, at about a third of that. Values still go through
the columns' own SQLAlchemy types (UTC datetimes, JSON, booleans) both ways, so rows are
stored and read exactly as the SQLAlchemy path stores and reads them.

When another process holds SQLite's write lock (a ``strangler worker`` or a second
sidecar process on the same file), SQLite's own busy handler would sleep 1, 2, 5, 10...
ms between tries while the other process takes the lock again and again; here the
``BEGIN IMMEDIATE`` is retried every 0.2 ms instead, up to the
busy timeout, so a writer gets the lock as soon as it is free.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from strangler.ledger.schema import UTCDateTime

__all__ = [
    "DriverConnection",
    "DriverResult",
    "DriverRow",
    "DriverWrites",
    "WriteConnection",
    "WriteResult",
    "json_text",
    "utc_text",
]

RETRY_INTERVAL_S = 0.0002
# Compiled statements kept, most recently used first (the ledger's own are a few dozen).
_MAX_CACHED = 256

Processor = Callable[[Any], Any] | None
_T = TypeVar("_T")


class WriteResult(Protocol):
    """What the ledger reads of a write's result (a CursorResult, or a DriverResult)."""

    @property
    def rowcount(self) -> int:
        """How many rows the statement changed."""
        ...

    def first(self) -> Any:
        """The first row returned, or None."""
        ...

    def scalars(self) -> Iterable[Any]:
        """The first column of every row returned."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class WriteConnection(Protocol):
    """What the ledger's writes use: a SQLAlchemy Connection, or a DriverConnection."""

    @property
    def dialect(self) -> sa.Dialect:
        """The database's SQLAlchemy dialect."""
        ...

    def execute(self, statement: Any, parameters: Any = None, /) -> WriteResult:
        """Run a statement with its parameters (a mapping, or a list of them)."""
        ...


class DriverRow:
    """One result row: by column name as an attribute, or as ``row._mapping``."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


class DriverResult:
    """The rows a statement returned (all fetched) and how many rows it changed."""

    def __init__(self, rowcount: int, rows: list[DriverRow]) -> None:
        self.rowcount = rowcount
        self._rows = rows

    def __iter__(self) -> Iterator[DriverRow]:
        return iter(self._rows)

    def first(self) -> DriverRow | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def scalars(self) -> list[Any]:
        """The first column of every row."""
        return [next(iter(row._mapping.values())) for row in self._rows]


class _Compiled:
    """A statement compiled for SQLite: its SQL, parameter order, and value converters."""

    def __init__(
        self, statement: sa.ClauseElement, dialect: sa.Dialect, values: Mapping[str, Any]
    ) -> None:
        # An INSERT without VALUES names the columns this call gives, as SQLAlchemy does.
        keys = list(values) if isinstance(statement, sa.Insert) and values else None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.sql = compiled.string
        # An expanding IN (``IN (?, ?, ...)``) is rendered per call, with that call's values.
        self.expanding = bool(compiled.post_compile_params)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.bind: dict[str, Processor] = {
            name: _bind_processor(bind.type, dialect)
            for name, bind in ((name, compiled.binds.get(name)) for name in self.names)
            if bind is not None
        }
        # Where each converted parameter sits in the positional tuple, with its converter;
        # a name bound again (``now`` set in three columns) is converted once and copied.
        first: dict[str, int] = {}
        converters: list[tuple[int, Callable[[Any], Any]]] = []
        copies: list[tuple[int, int]] = []
        for index, name in enumerate(self.names):
            process = self.bind.get(name)
            if process is None:
                continue
            if name in first:
                copies.append((index, first[name]))
            else:
                first[name] = index
                converters.append((index, process))
        self.converters = tuple(converters)
        self.copies = tuple(copies)
        plan = _plan(compiled, self.names)
        self.fill = None if plan is None else _filler(plan)
        columns = list(getattr(statement, "exported_columns", ()))
        self.result: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        # The returned columns a processor converts, by position (a claim's 3 of 14).
        self.converted: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (index, process) for index, process in enumerate(self.result) if process is not None
        )

    def prepare(self, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """The SQL and its positional parameters for one call."""
        if self.expanding:
            state = self.compiled.construct_expanded_state(values)
            processors = {**self.bind, **state.processors}
            names = state.positiontup or ()
            converted = (_converted(state.parameters[name], processors.get(name)) for name in names)
            return state.statement, tuple(converted)
        if self.fill is None:
            merged = self.compiled.construct_params(values)
            params = [merged[name] for name in self.names]
        else:
            try:
                params = self.fill(values)
            except KeyError:  # one the caller must give is missing
                params = self._checked(values)
        for index, process in self.converters:
            params[index] = process(params[index])
        for index, source in self.copies:
            params[index] = params[source]
        return self.sql, tuple(params)

    def _checked(self, values: Mapping[str, Any]) -> list[Any]:
        """The parameters by SQLAlchemy's own rules (raising its error for a missing one)."""
        merged = self.compiled.construct_params(values)
        return [merged[name] for name in self.names]

    def rows(self, cursor: sqlite3.Cursor) -> list[DriverRow]:
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        if self.result and len(self.result) != len(names):  # text() declares no columns
            raise TypeError(f"{len(names)} columns came back where {len(self.result)} were built")
        rows = cursor.fetchall()
        converted = self.converted
        if not converted:
            return [DriverRow(dict(zip(names, raw, strict=True))) for raw in rows]
        built = []
        for raw in rows:
            values = list(raw)
            for index, process in converted:
                values[index] = process(values[index])
            built.append(DriverRow(dict(zip(names, values, strict=True))))
        return built


# Per positional parameter: the key a caller gives it by, and the value bound in the
# statement itself (_MISSING when the caller must give it).
_Plan = tuple[tuple[str, Any], ...]
_MISSING = object()


def _plan(compiled: SQLCompiler, names: tuple[str, ...]) -> _Plan | None:
    """How to fill the positional parameters from a call's values without
    ``construct_params``, which rebuilds a dict of every parameter on every call (a
    tenth of a write's cost); None where its rules are more than a lookup (escaped
    names, computed defaults), and ``construct_params`` is used instead."""
    if compiled.escaped_bind_names:
        return None
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    plan = []
    for name in names:
        bind = by_name.get(name)
        # A caller gives a value by its name (an anonymous one's key is never given).
        anonymous = bind is not None and bind.key.startswith("%(")
        if bind is None or bind.callable is not None or (bind.key != name and not anonymous):
            return None
        plan.append((name, _MISSING if bind.required else bind.value))
    return tuple(plan)


def _filler(plan: _Plan) -> Callable[[Mapping[str, Any]], list[Any]]:
    """The call's positional parameters from its values, the statement's own where it
    gives none (raising KeyError when one the caller must give is missing): a dict merge
    and an itemgetter, both in C, where a loop of ``values.get`` cost 3 to 8 us a call."""
    fixed = {name: value for name, value in plan if value is not _MISSING}
    names = [name for name, _ in plan]
    if not names:
        return lambda _values: []
    if len(names) == 1:
        [name] = names
        if fixed:
            return lambda values: [values.get(name, fixed[name])]
        return lambda values: [values[name]]
    get = itemgetter(*names)
    if fixed:
        return lambda values: list(get({**fixed, **values}))
    return lambda values: list(get(values))


def _bind_processor(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Processor:
    """The column type's bind processor, with two shortcuts checked to give the same text:

    - the ledger's UTC datetimes: one step doing what its two do (UTCDateTime's
      conversion, then SQLite DATETIME's text), at a third of the cost, remembering the
      last datetime's text (the same object bound again, as a step row's ``recorded_at``
      in each row of an executemany, is converted once);
    - a JSON column's dict: straight to the encoder ``json.dumps`` uses (the type's
      processor checks for its NULL markers first, then calls ``json.dumps``)."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return process
    if isinstance(type_, UTCDateTime):
        sample = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
        return _remembered(utc_text) if process(sample) == utc_text(sample) else process
    if isinstance(type_, sa.JSON) and dialect._json_serializer in (None, json.dumps):  # type: ignore[attr-defined]
        sample_dict = {"a": [1, 2.5, None, True], "\u00e9": {"b": "\u2603"}}
        if process(sample_dict) == _JSON_ENCODER.encode(sample_dict):
            return _dict_first(process)
    return process


# The encoder json.dumps uses for its default arguments (the same settings).
_JSON_ENCODER = json.JSONEncoder()


def json_text(value: dict[str, Any]) -> str:
    """A JSON column's dict as SQLite stores it (``json.dumps``'s text)."""
    return _JSON_ENCODER.encode(value)


def _dict_first(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, with a plain dict encoded straight away."""
    encode = _JSON_ENCODER.encode

    def convert(value: Any) -> Any:
        return encode(value) if type(value) is dict else process(value)

    return convert


def _remembered(convert: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """``convert``, remembering its last value (kept, so its id is never reused) and result:
    the same object again is converted once."""
    last: list[tuple[Any, Any]] = [(_MISSING, None)]

    def remembered(value: Any) -> _T:
        seen, result = last[0]
        if value is seen:
            return result  # type: ignore[no-any-return]
        result = convert(value)
        last[0] = (value, result)
        return result

    return remembered


# The last second utc_text wrote, and its text: [((year, ..., second), "YYYY-MM-DD HH:MM:SS")].
_SECOND: list[tuple[tuple[int, ...], str]] = [((), "")]


def utc_text(value: datetime | None) -> str | None:
    """A ledger datetime as SQLite stores it (UTCDateTime, then DATETIME's text)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # the usual case: the second's text kept, the fraction added
        second = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        kept = _SECOND[0]
        if kept[0] != second:  # a pair read and replaced whole: safe between threads
            kept = (second, value.isoformat(" ", "seconds")[:-6])
            _SECOND[0] = kept
        # Half the CPU of isoformat(" ", "microseconds") less its "+00:00" (11 an order).
        return f"{kept[1]}.{value.microsecond:06d}"
    if value.tzinfo is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_Cache = OrderedDict[tuple[int, tuple[str, ...]], tuple[sa.ClauseElement, _Compiled]]


def _converted(value: Any, process: Processor) -> Any:
    return value if process is None else process(value)


class DriverConnection:
    """Runs SQLAlchemy statements on a sqlite3 connection, as much as the ledger needs.

    ``execute`` takes a statement and a mapping of parameters (or a list of them, run as
    one ``executemany``); the result has ``rowcount``, ``first()``, ``scalars()`` and
    its rows, with values converted by the columns' types.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        dialect: sa.Dialect,
        cache: _Cache,
    ) -> None:
        self._dialect = dialect
        self._connection = connection
        self._cache = cache

    @property
    def dialect(self) -> sa.Dialect:
        """SQLite's SQLAlchemy dialect."""
        return self._dialect

    def execute(
        self,
        statement: sa.ClauseElement,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> DriverResult:
        """Run ``statement``; raises sqlite3.Error when the database fails."""
        if parameters is None or isinstance(parameters, Mapping):
            values = parameters or {}
            compiled = self._compiled(statement, values)
            cursor = self._connection.execute(*compiled.prepare(values))
            return DriverResult(cursor.rowcount, compiled.rows(cursor))
        if not parameters:
            return DriverResult(0, [])
        compiled = self._compiled(statement, parameters[0])
        prepared = [compiled.prepare(values) for values in parameters]
        cursor = self._connection.executemany(prepared[0][0], [params for _, params in prepared])
        return DriverResult(cursor.rowcount, [])

    def execute_rows(
        self, statement: sa.TextClause, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> DriverResult:
        """Run ``statement`` once per row (one ``executemany``), each row its parameters'
        values in the order ``names`` gives, already converted as the columns' types
        convert them (as :meth:`execute` would); the rowcount is the rows changed.
        Raises ValueError when ``names`` is not the statement's order of parameters."""
        compiled = self._compiled(statement, {})
        if compiled.names != tuple(names) or compiled.expanding:
            raise ValueError(f"the statement's parameters are {compiled.names}, not {names}")
        if not rows:
            return DriverResult(0, [])
        cursor = self._connection.executemany(compiled.sql, rows)
        return DriverResult(cursor.rowcount, [])

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (SQLite ends one itself on some errors)."""
        return self._connection.in_transaction

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One write inside the open transaction: kept when the block ends cleanly, else
        rolled back to where it began (the exception goes on), the rest left as it is.
        When SQLite rolled the whole transaction back (a full disk, an I/O error), there
        is nothing to roll back to: the exception goes on as it is."""
        connection = self._connection
        connection.execute("SAVEPOINT one_write")
        try:
            yield
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK TO one_write")
                connection.execute("RELEASE one_write")
            raise
        connection.execute("RELEASE one_write")

    def _compiled(self, statement: sa.ClauseElement, values: Mapping[str, Any]) -> _Compiled:
        key = (id(statement), tuple(values) if isinstance(statement, sa.Insert) else ())
        cached = self._cache.get(key)
        if cached is not None and cached[0] is statement:
            self._cache.move_to_end(key)
            return cached[1]
        compiled = _Compiled(statement, self._dialect, values)
        # The statement is kept with its entry, so its id cannot be reused meanwhile.
        self._cache[key] = (statement, compiled)
        if len(self._cache) > _MAX_CACHED:
            self._cache.popitem(last=False)
        return compiled


class DriverWrites:
    """One sqlite3 connection of ``engine``'s pool, kept for the ledger's writes.

    Opened on first use, and again after a driver error. Not thread-safe: the caller
    serialises every use (the ledger's write lock).
    """

    def __init__(self, engine: sa.Engine, *, busy_timeout_s: float = 5.0) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError(f"DriverWrites runs on SQLite only, not {engine.dialect.name!r}")
        self._engine = engine
        self._busy_timeout_s = busy_timeout_s
        self._dialect = engine.dialect
        self._pooled: sa.PoolProxiedConnection | None = None
        # The sqlite3 connection underneath _pooled (None when _pooled is).
        self._sqlite: sqlite3.Connection | None = None
        self._cache: _Cache = OrderedDict()

    @contextmanager
    def transaction(self, *, deadline: float | None = None) -> Iterator[DriverConnection]:
        """A ``BEGIN IMMEDIATE`` transaction, committed on a clean exit, else rolled back.

        Raises sqlite3.Error when the database fails or stays locked for the busy timeout,
        or past ``deadline`` (a ``time.monotonic()`` value) when that comes first.
        """
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # locked by another process: try again
            if not _locked(exc):
                raise
            self._when_unlocked(lambda: connection.execute("BEGIN IMMEDIATE"), deadline)
        try:
            yield DriverConnection(connection, self._dialect, self._cache)
            connection.execute("COMMIT")
        except BaseException:
            self._roll_back(connection)
            raise

    def close(self) -> None:
        """Give the connection back to the pool (the next use takes one again)."""
        pooled, self._pooled, self._sqlite = self._pooled, None, None
        if pooled is None:
            return
        try:
            _driver(pooled).execute(f"PRAGMA busy_timeout = {round(self._busy_timeout_s * 1000)}")
        except sqlite3.Error:
            # Not fit to go back as it is: the pool opens a fresh connection instead.
            pooled.invalidate()
            return
        pooled.close()

    def _when_unlocked(self, attempt: Callable[[], _T], deadline: float | None) -> _T:
        busy_deadline = time.monotonic() + self._busy_timeout_s
        deadline = busy_deadline if deadline is None else min(deadline, busy_deadline)
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if _locked(exc) and time.monotonic() < deadline:
                    time.sleep(RETRY_INTERVAL_S)
                    continue
                raise

    def _roll_back(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._sqlite is not None:
            return self._sqlite
        if self._pooled is None:
            # The engine's connect hook set autocommit mode and WAL; the busy wait is ours.
            self._pooled = self._engine.raw_connection()
            _driver(self._pooled).execute("PRAGMA busy_timeout = 0")
        self._sqlite = _driver(self._pooled)
        return self._sqlite


def _driver(pooled: sa.PoolProxiedConnection) -> sqlite3.Connection:
    connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
    return connection


def _locked(exc: sqlite3.OperationalError) -> bool:
    """True when the database was locked by another connection (SQLITE_BUSY)."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
