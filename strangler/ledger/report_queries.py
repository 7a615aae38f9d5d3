"""The report's aggregates, counted in SQL on SQLite and PostgreSQL alike.

Every figure is a GROUP BY over the window (``routed_at`` in ``[since, until)``); the
percentiles are nearest-rank, picked with ``ROW_NUMBER()`` over the ordered durations, so
Python only reshapes a few dozen result rows. Durations are the processing time defined
once in :mod:`strangler.ledger.durations` (``received_at`` to ``terminal_at``, to the
microsecond on both databases), as ``/metrics`` reads it. docs/reports.md explains each
figure; :mod:`strangler.report.report` turns these aggregates into the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from strangler.ledger import schema
from strangler.ledger.durations import ENDED, seconds_to_terminal
from strangler.ledger.engine import read_snapshot
from strangler.ledger.statements import FAILED_OR_FELL_BACK
from strangler.report.report import (
    Aggregates,
    Cause,
    GroupAggregates,
    HistogramBin,
    MismatchExample,
    Report,
    RolloutPoint,
    ShadowAggregates,
    TimeStats,
    Window,
    build_report,
    story_url,
)
from strangler.report.verdict import Thresholds

__all__ = ["HISTOGRAM_EDGES_S", "RETENTION_KEY", "check_window", "load_report", "read_aggregates"]

RETENTION_KEY = "retention.horizon"
# Log-spaced bin edges for the time-to-terminal histogram, 1 ms to 4 h.
HISTOGRAM_EDGES_S = (
    0.0,
    *(m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)),
    *(m * 1000.0 for m in (10, 20, 50)),
    14_400.0,
)
PERCENTS = (50, 90, 99)
CAUSES_PER_GROUP = 10
_o = schema.orders
_cs = schema.comparison_steps
_c = schema.comparisons


def load_report(
    engine: sa.Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    thresholds: Thresholds | None = None,
    examples: int = 10,
    now: datetime | None = None,
) -> Report:
    """The report over orders routed in ``[since, until)`` (``until`` defaults to now).

    Raises ValueError for naive datetimes, ``since >= until`` or a negative ``examples``
    (check them first with :func:`check_window` to tell bad input from a failure).
    """
    return build_report(
        read_aggregates(engine, since=since, until=until, examples=examples, now=now),
        thresholds,
    )


def read_aggregates(
    engine: sa.Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    examples: int = 10,
    buckets: int = 24,
    now: datetime | None = None,
) -> Aggregates:
    """Read every aggregate of the report in one read-only snapshot (never a write lock)."""
    now = now or datetime.now(UTC)
    until = until or now
    check_window(since, until, examples)
    with read_snapshot(engine) as conn:
        window = _window(conn, since, until)
        dialect = conn.dialect.name
        scope = _o.c.routed_at < until
        if window.effective_since is not None:
            scope = sa.and_(scope, _o.c.routed_at >= window.effective_since)
        groups = _groups(conn, dialect, scope)
        shadow = _shadow(conn, dialect, window, examples, buckets)
        rollout = _rollout(conn, window)
    return Aggregates(
        generated_at=now, window=window, groups=groups, shadow=shadow, rollout=rollout
    )


def check_window(since: datetime | None, until: datetime | None, examples: int) -> None:
    """Refuse a bad request before any read: ValueError saying what is wrong.

    Naive datetimes, ``since`` not before ``until`` (now when None), negative examples.
    """
    until = until or datetime.now(UTC)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"--{name} {value.isoformat()} has no time zone; add Z or +00:00")
    if since is not None and since >= until:
        raise ValueError(f"--since {since.isoformat()} must be before --until {until.isoformat()}")
    if examples < 0:
        raise ValueError(f"examples must be >= 0, got {examples!r}")


def _window(conn: sa.Connection, since: datetime | None, until: datetime) -> Window:
    raw = conn.execute(sa.select(schema.kv.c.value).where(schema.kv.c.name == RETENTION_KEY))
    value = raw.scalar_one_or_none()
    horizon = _parse_horizon(value) if value else None
    effective = since
    if horizon is not None and (since is None or horizon > since):
        effective = horizon
    return Window(since=since, until=until, retention_horizon=horizon, effective_since=effective)


def _parse_horizon(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"kv {RETENTION_KEY!r} is not an ISO timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- expressions ------------------------------------------------------------------------


def _epoch(dialect: str, column: Any) -> ColumnElement[float]:
    """Seconds since 1970 as a float (to the millisecond on SQLite: enough for buckets)."""
    if dialect == "sqlite":
        return (sa.func.julianday(column) - 2440587.5) * 86400.0
    return sa.cast(sa.extract("epoch", column), sa.Float)


def _floor_int(dialect: str, value: ColumnElement[float]) -> ColumnElement[int]:
    if dialect == "sqlite":
        return sa.cast(value, sa.Integer)  # truncation is floor for the values >= 0 used here
    return sa.cast(sa.func.floor(value), sa.Integer)


_GROUP = sa.case((_o.c.source == "reconciled", "reconciled"), else_=_o.c.path)


def _histogram_bin(duration: ColumnElement[float]) -> ColumnElement[int]:
    whens = [(duration < edge, index) for index, edge in enumerate(HISTOGRAM_EDGES_S[1:])]
    return sa.case(*whens, else_=len(HISTOGRAM_EDGES_S) - 1)


# -- per group ---------------------------------------------------------------------------


def _groups(
    conn: sa.Connection, dialect: str, scope: ColumnElement[bool]
) -> dict[str, GroupAggregates]:
    counts = _counts(conn, scope)
    times, histograms = _durations(conn, dialect, scope)
    causes = _causes(conn, scope)
    errored, step_errors = _errors(conn, scope)
    return {
        group: GroupAggregates(
            orders=count["orders"],
            terminal=count["terminal"],
            outcomes=count["outcomes"],
            times=times.get(group, TimeStats(0, None, None, None, None)),
            histogram=histograms.get(group, ()),
            handoffs=count["handoffs"],
            causes=causes.get(group, ()),
            errored_orders=errored.get(group, 0),
            step_errors=step_errors.get(group, {}),
            failed_or_fell_back=count["failed_or_fell_back"],
        )
        for group, count in counts.items()
    }


def _counts(conn: sa.Connection, scope: ColumnElement[bool]) -> dict[str, dict[str, Any]]:
    group = _GROUP.label("grp")
    rows = conn.execute(
        sa.select(
            group,
            _o.c.outcome,
            _o.c.handoff,
            sa.func.count().label("n"),
            sa.func.count(_o.c.terminal_at).label("terminal"),
            sa.func.max(sa.case((FAILED_OR_FELL_BACK, 1), else_=0)).label("errored"),
        )
        .where(scope)
        .group_by(group, _o.c.outcome, _o.c.handoff)
    )
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = result.setdefault(
            row.grp,
            {"orders": 0, "terminal": 0, "outcomes": {}, "handoffs": {}, "failed_or_fell_back": 0},
        )
        entry["orders"] += row.n
        if row.errored:
            # One row per (outcome, handoff): an order that fell back and failed counts once.
            entry["failed_or_fell_back"] += row.n
        entry["terminal"] += row.terminal
        if row.outcome is not None:
            entry["outcomes"][row.outcome] = entry["outcomes"].get(row.outcome, 0) + row.n
        if row.handoff is not None:
            entry["handoffs"][row.handoff] = entry["handoffs"].get(row.handoff, 0) + row.n
    return result


def _rank(percent: int, count: Any) -> Any:
    """ceil(percent * count / 100) in integer SQL arithmetic (see stats.nearest_rank)."""
    return (count * percent + 99) // 100


def _durations(
    conn: sa.Connection, dialect: str, scope: ColumnElement[bool]
) -> tuple[dict[str, TimeStats], dict[str, tuple[HistogramBin, ...]]]:
    """Percentiles and histogram in one statement over durations computed once per order.

    The durations CTE is MATERIALIZED so that neither database re-evaluates the duration
    expression for the window's ORDER BY and for each branch of the histogram's CASE.
    """
    durations = (
        sa.select(_GROUP.label("grp"), seconds_to_terminal(dialect).label("d"))
        .where(scope, ENDED)
        .cte("durations")
        .prefix_with("MATERIALIZED")
    )
    ranked = sa.select(
        durations.c.grp,
        durations.c.d,
        sa.func.row_number().over(partition_by=durations.c.grp, order_by=durations.c.d).label("rn"),
        sa.func.count().over(partition_by=durations.c.grp).label("n"),
    ).subquery()
    wanted = [_rank(percent, ranked.c.n) for percent in PERCENTS]
    picks = sa.select(
        sa.literal("rank").label("kind"), ranked.c.grp, ranked.c.rn, ranked.c.n, ranked.c.d
    ).where(sa.or_(ranked.c.rn == ranked.c.n, *(ranked.c.rn == rank for rank in wanted)))
    index = _histogram_bin(durations.c.d).label("bin")
    bins = sa.select(
        sa.literal("bin").label("kind"),
        durations.c.grp,
        index,
        sa.func.count().label("n"),
        sa.cast(sa.null(), sa.Float).label("d"),
    ).group_by(durations.c.grp, index)
    picked: dict[str, dict[int, float]] = defaultdict(dict)
    sizes: dict[str, int] = {}
    counted: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in conn.execute(sa.union_all(picks, bins)):
        if row.kind == "rank":
            picked[row.grp][row.rn] = float(row.d)
            sizes[row.grp] = row.n
        else:
            counted[row.grp].append((row.rn, row.n))
    times = {group: _time_stats(sizes[group], picked[group]) for group in sizes}
    return times, {group: _bins(found) for group, found in counted.items()}


def _time_stats(count: int, by_rank: Mapping[int, float]) -> TimeStats:
    def at(percent: int) -> float:
        return by_rank[(count * percent + 99) // 100]

    return TimeStats(count=count, p50=at(50), p90=at(90), p99=at(99), max=by_rank[count])


def _bins(counted: list[tuple[int, int]]) -> tuple[HistogramBin, ...]:
    edges = (*HISTOGRAM_EDGES_S, float("inf"))
    return tuple(
        HistogramBin(edges[index], edges[index + 1], orders) for index, orders in sorted(counted)
    )


def _causes(conn: sa.Connection, scope: ColumnElement[bool]) -> dict[str, tuple[Cause, ...]]:
    moved = schema.transitions
    group = _GROUP.label("grp")
    cause = sa.func.coalesce(
        sa.func.nullif(moved.c.reason, ""), _o.c.last_error, "unrecorded"
    ).label("cause")
    rows = conn.execute(
        sa.select(group, _o.c.handoff, cause, sa.func.count().label("n"))
        .select_from(
            _o.outerjoin(
                moved, sa.and_(moved.c.order_id == _o.c.order_id, moved.c.status == "fell_back")
            )
        )
        .where(scope, _o.c.handoff.is_not(None))
        .group_by(group, _o.c.handoff, cause)
        .order_by(sa.desc("n"), group, _o.c.handoff, cause)
    )
    result: dict[str, list[Cause]] = defaultdict(list)
    for row in rows:
        if len(result[row.grp]) < CAUSES_PER_GROUP:
            result[row.grp].append(Cause(handoff=row.handoff, cause=row.cause, orders=row.n))
    return {group: tuple(items) for group, items in result.items()}


def _errors(
    conn: sa.Connection, scope: ColumnElement[bool]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    steps = schema.step_results
    group = _GROUP.label("grp")
    failing = sa.and_(scope, steps.c.error.is_not(None), steps.c.dry_run.is_(False))
    joined = steps.join(_o, steps.c.order_id == _o.c.order_id)
    per_step = conn.execute(
        sa.select(group, steps.c.step, sa.func.count(sa.distinct(steps.c.order_id)).label("n"))
        .select_from(joined)
        .where(failing)
        .group_by(group, steps.c.step)
    )
    by_step: dict[str, dict[str, int]] = defaultdict(dict)
    for row in per_step:
        by_step[row.grp][row.step] = row.n
    per_group = conn.execute(
        sa.select(group, sa.func.count(sa.distinct(steps.c.order_id)).label("n"))
        .select_from(joined)
        .where(failing)
        .group_by(group)
    )
    return {row.grp: row.n for row in per_group}, dict(by_step)


# -- shadow ------------------------------------------------------------------------------


def _in_window(column: sa.Column[datetime], window: Window) -> ColumnElement[bool]:
    scope: ColumnElement[bool] = column < window.until
    if window.effective_since is not None:
        scope = sa.and_(scope, column >= window.effective_since)
    return scope


def _shadow(
    conn: sa.Connection, dialect: str, window: Window, examples: int, buckets: int
) -> ShadowAggregates:
    statuses = _comparison_counts(conn, window)
    steps = _step_counts(conn, window)
    shadow = statuses.get("shadow", {})
    return ShadowAggregates(
        compared=shadow.get(("compared", None), (0, 0))[0],
        not_compared={
            reason or "unrecorded": n
            for (status, reason), (n, _) in shadow.items()
            if status == "not_compared"
        },
        mismatched_orders=shadow.get(("compared", None), (0, 0))[1],
        step_counts=steps.get("shadow", {}),
        noise_compared=statuses.get("noise", {}).get(("compared", None), (0, 0))[0],
        noise_counts=steps.get("noise", {}),
        over_time=_over_time(conn, dialect, window, buckets),
        examples=_examples(conn, window, examples) if examples else (),
    )


def _comparison_counts(
    conn: sa.Connection, window: Window
) -> dict[str, dict[tuple[str, str | None], tuple[int, int]]]:
    reason = sa.case((_c.c.status == "compared", sa.null()), else_=_c.c.reason).label("why")
    mismatched = sa.func.sum(sa.case((_c.c.mismatch.is_(True), 1), else_=0))
    rows = conn.execute(
        sa.select(
            _c.c.kind,
            _c.c.status,
            reason,
            sa.func.count().label("n"),
            mismatched.label("bad"),
        )
        .where(_in_window(_c.c.routed_at, window))
        .group_by(_c.c.kind, _c.c.status, reason)
    )
    result: dict[str, dict[tuple[str, str | None], tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        result[row.kind][(row.status, row.why)] = (row.n, int(row.bad or 0))
    return result


def _mismatches() -> ColumnElement[Any]:
    return sa.func.sum(sa.case((_cs.c.verdict == "mismatch", 1), else_=0))


def _step_counts(conn: sa.Connection, window: Window) -> dict[str, dict[str, tuple[int, int]]]:
    rows = conn.execute(
        sa.select(_cs.c.kind, _cs.c.step, _mismatches().label("bad"), sa.func.count().label("n"))
        .where(_in_window(_cs.c.routed_at, window))
        .group_by(_cs.c.kind, _cs.c.step)
    )
    result: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        result[row.kind][row.step] = (int(row.bad), row.n)
    return result


def _over_time(
    conn: sa.Connection, dialect: str, window: Window, buckets: int
) -> tuple[tuple[str, datetime, datetime, int, int], ...]:
    shadow = sa.and_(_cs.c.kind == "shadow", _in_window(_cs.c.routed_at, window))
    first, last = conn.execute(
        sa.select(sa.func.min(_cs.c.routed_at), sa.func.max(_cs.c.routed_at)).where(shadow)
    ).one()
    if first is None:
        return ()
    # Buckets span the comparisons themselves, not the whole window (which may be a month
    # around a few minutes of traffic); a millisecond of slack each side absorbs rounding.
    slack = timedelta(milliseconds=1)
    start = first - slack
    width = ((last + slack) - start).total_seconds() / buckets
    offset = _epoch(dialect, _cs.c.routed_at) - start.timestamp()
    bucket = _floor_int(dialect, offset / width).label("bucket")
    rows = conn.execute(
        sa.select(_cs.c.step, bucket, _mismatches().label("bad"), sa.func.count().label("n"))
        .where(shadow)
        .group_by(_cs.c.step, bucket)
        .order_by(_cs.c.step, bucket)
    )
    return tuple(
        (
            row.step,
            start + timedelta(seconds=row.bucket * width),
            start + timedelta(seconds=(row.bucket + 1) * width),
            int(row.bad),
            row.n,
        )
        for row in rows
    )


def _examples(conn: sa.Connection, window: Window, limit: int) -> tuple[MismatchExample, ...]:
    rows = conn.execute(
        sa.select(_c.c.order_id, _c.c.routed_at, _c.c.candidate, _c.c.baseline)
        .where(_c.c.kind == "shadow", _c.c.mismatch.is_(True), _in_window(_c.c.routed_at, window))
        .order_by(_c.c.routed_at.desc(), _c.c.order_id)
        .limit(limit)
    ).all()
    details = _details(conn, [row.order_id for row in rows])
    return tuple(
        MismatchExample(
            order_id=row.order_id,
            routed_at=row.routed_at,
            steps=details.get(row.order_id, {}),
            candidate=row.candidate,
            baseline=row.baseline,
            story=story_url(row.order_id),
        )
        for row in rows
    )


def _details(conn: sa.Connection, order_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    if not order_ids:
        return {}
    rows = conn.execute(
        sa.select(_cs.c.order_id, _cs.c.step, _cs.c.detail)
        .where(_cs.c.kind == "shadow", _cs.c.verdict == "mismatch", _cs.c.order_id.in_(order_ids))
        .order_by(_cs.c.order_id, _cs.c.step)
    )
    result: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        result[row.order_id][row.step] = row.detail or ""
    return dict(result)


# -- rollout -----------------------------------------------------------------------------


def _rollout(conn: sa.Connection, window: Window) -> tuple[RolloutPoint, ...]:
    """The changes in the window, after the last change before it (the level it starts at)."""
    events = schema.rollout_events
    ordered = (events.c.at, events.c.id)
    inside = conn.execute(
        sa.select(events).where(_in_window(events.c.at, window)).order_by(*ordered)
    ).all()
    before: Sequence[sa.Row[Any]] = ()
    if window.effective_since is not None:
        before = conn.execute(
            sa.select(events)
            .where(events.c.at < window.effective_since)
            .order_by(events.c.at.desc(), events.c.id.desc())
            .limit(1)
        ).all()
    return tuple(
        RolloutPoint(
            at=row.at,
            actor=row.actor,
            from_rollout=row.from_rollout,
            to_rollout=row.to_rollout,
            reason=row.reason,
            flag_revision=row.flag_revision,
            kind=row.kind,
            enabled=row.enabled,
            instant_weight=row.instant_weight,
            shadow_weight=row.shadow_weight,
            stage=row.stage,
            no_evidence=bool(row.no_evidence),
        )
        for row in [*before, *inside]
    )
