"""The ledger's side of the comparisons: read what an order has, store a result once.

Functions on an open connection; :class:`strangler.ledger.SqlLedger` wraps each in its
transaction and error translation. A comparison is stored once per (order_id, kind):
``INSERT ... ON CONFLICT DO NOTHING`` on the ``comparisons`` row, and its step rows only
when that row is new, in the same transaction, so a second writer changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from strangler.compare.pairing import BUSINESS_OUTCOMES, LEGACY_TERMINAL, OrderRecord
from strangler.compare.records import Comparison, ComparisonKind
from strangler.ledger.driver import WriteConnection
from strangler.ledger.schema import comparison_steps, comparisons, orders, step_results
from strangler.orders import Route, StepResult

__all__ = ["due_for_comparison", "insert_comparison", "load_record"]

_o = orders.c
_s = step_results.c
_c = comparisons.c


def load_record(conn: sa.Connection, order_id: str) -> OrderRecord | None:
    """What the ledger has about ``order_id`` for comparing it; None when unknown."""
    row = conn.execute(
        sa.select(
            _o.order_id,
            _o.path,
            _o.routed_at,
            _o.handoff,
            _o.needs_dispatch,
            _o.dry_run_outcome,
            _o.legacy_status,
        ).where(_o.order_id == order_id)
    ).first()
    if row is None:
        return None
    steps = conn.execute(
        sa.select(step_results).where(_s.order_id == order_id).order_by(_s.started_at, _s.id)
    ).mappings()
    return OrderRecord(
        order_id=row.order_id,
        path=row.path,
        routed_at=row.routed_at,
        handoff=row.handoff,
        dry_run_settled=not row.needs_dispatch,
        dry_run_outcome=row.dry_run_outcome,
        legacy_status=row.legacy_status,
        steps=tuple(_step(step) for step in steps),
    )


def insert_comparison(conn: WriteConnection, comparison: Comparison) -> bool:
    """Store ``comparison`` unless its (order_id, kind) is stored; True when new."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(comparisons)
        .values(
            order_id=comparison.order_id,
            kind=comparison.kind.value,
            status=comparison.status,
            reason=comparison.reason.value if comparison.reason else None,
            mismatch=comparison.mismatch,
            candidate=comparison.candidate.to_json(),
            baseline=comparison.baseline.to_json(),
            routed_at=comparison.routed_at,
            compared_at=comparison.compared_at,
        )
        .on_conflict_do_nothing(index_elements=["order_id", "kind"])
        .returning(_c.order_id)
    )
    if conn.execute(statement).first() is None:
        return False
    if comparison.steps:
        conn.execute(
            comparison_steps.insert(),
            [
                {
                    "order_id": comparison.order_id,
                    "kind": comparison.kind.value,
                    "step": verdict.step,
                    "verdict": verdict.verdict,
                    "detail": verdict.detail,
                    "routed_at": comparison.routed_at,
                }
                for verdict in comparison.steps
            ],
        )
    return True


def due_for_comparison(
    conn: sa.Connection, kind: ComparisonKind, *, older_than: datetime, limit: int
) -> list[str]:
    """Orders of ``kind`` with no stored comparison that may be decided now, oldest first.

    Shadow: the dry run settled and legacy is terminal (or the dry run failed), handed
    off, legacy failed, or routed at or before ``older_than``. Noise: legacy-path orders whose
    first probe run is recorded, due for their second run once legacy is terminal or routed
    at or before ``older_than``.
    """
    stored = sa.exists().where(_c.order_id == _o.order_id, _c.kind == kind.value)
    overdue = _o.routed_at <= older_than
    legacy_done = _o.legacy_status.in_(sorted(LEGACY_TERMINAL))
    if kind is ComparisonKind.SHADOW:
        settled = sa.and_(
            _o.needs_dispatch == sa.false(),
            sa.or_(
                legacy_done,
                _o.dry_run_outcome.is_(None),
                _o.dry_run_outcome.not_in(sorted(BUSINESS_OUTCOMES)),
            ),
        )
        ready = sa.or_(settled, _o.handoff.is_not(None), overdue)
        path_ok: Any = _o.path == Route.SHADOW.value
    else:
        probed = sa.exists().where(
            _s.order_id == _o.order_id, _s.path == Route.LEGACY.value, _s.dry_run == sa.true()
        )
        ready = sa.or_(legacy_done, overdue)
        path_ok = sa.and_(_o.path == Route.LEGACY.value, probed)
    statement = (
        sa.select(_o.order_id)
        .where(path_ok, ~stored, ready, _o.routed_at.is_not(None))
        .order_by(_o.routed_at)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def _step(row: sa.RowMapping) -> StepResult:
    return StepResult(
        order_id=row["order_id"],
        path=Route(row["path"]),
        step=row["step"],
        decision=row["decision"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        payload=row["payload"] or {},
        error=row["error"],
        dry_run=row["dry_run"],
    )
