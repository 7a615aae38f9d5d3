"""A big ledger history made in bulk SQL, for load tests and benches (SQLite).

:func:`fill_history` writes ``orders`` ended orders routed before ``until``, spread
evenly over ``span``, entirely inside SQLite (``INSERT ... SELECT`` over a recursive
counter, no rows through Python): a million orders take seconds, not minutes. The mix
resembles a rollout at 25 %: half legacy, three tenths instant (three steps each, one
in a hundred fell back), a fifth shadow (a comparison of four steps each, one in two
hundred mismatching on fraud_scan), outcomes 94 % fulfilled. Ids are ``synthetic-<n>``,
so they never meet real orders. Every value is stored as the ledger's own column types
store it (naive UTC text to the microsecond, JSON text, 0/1 booleans).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from strangler.ledger.migrate import ensure_schema

__all__ = ["fill_history"]

# SQLite's %f is seconds to the millisecond; "000" makes the ledger's microseconds.
# Order n: routed at until - span + n * step; path by n % 10; outcome by n % 100.
_ORDERS = """
WITH RECURSIVE counter(n) AS (
    SELECT 0 UNION ALL SELECT n + 1 FROM counter WHERE n + 1 < :orders
),
timed AS (
    SELECT n,
           strftime('%Y-%m-%d %H:%M:%f', :start, (n * :step_s) || ' seconds') || '000' AS at,
           CASE WHEN n % 10 < 5 THEN 'legacy' WHEN n % 10 < 8 THEN 'instant' ELSE 'shadow' END
               AS path,
           CASE WHEN n % 100 < 94 THEN 'fulfilled' WHEN n % 100 < 97 THEN 'rejected_fraud'
                WHEN n % 100 < 99 THEN 'payment_declined' ELSE 'failed' END AS outcome
    FROM counter
)
INSERT INTO orders (
    order_id, notification, source, status, path, variant, rollout, flag_revision,
    decision_reason, received_at, routed_at, terminal_at, updated_at, outcome, handoff,
    needs_dispatch, next_attempt_at, attempts, last_error
)
SELECT 'synthetic-' || n,
       json_object('order_id', 'synthetic-' || n, 'user_guid', 'u-' || (n % 5000),
                   'unit_id', 'unit-' || (n % 13)),
       'notifications', outcome, path, path, 25, 'synthetic', 'in rollout',
       at,
       strftime('%Y-%m-%d %H:%M:%f', at, '+0.002 seconds') || '000',
       strftime('%Y-%m-%d %H:%M:%f', at,
                CASE path WHEN 'instant' THEN '+0.015 seconds'
                          ELSE '+' || (60 + n % 1740) || ' seconds' END) || '000',
       at, outcome,
       CASE WHEN path = 'instant' AND n % 100 = 7 THEN 'fallback' END,
       0, at, 1,
       CASE WHEN path = 'instant' AND n % 100 = 7 THEN 'pipeline gave up: timeout' END
FROM timed
"""
_STEPS = """
WITH step(name, seq) AS (
    VALUES ('fraud_scan', 0), ('authorize_payment', 1), ('fulfill', 2)
)
INSERT INTO step_results (
    order_id, path, step, dry_run, seq, decision, payload, started_at, finished_at, error,
    recorded_at
)
SELECT order_id, 'instant', step.name, 0, 0, 'ok', '{}', routed_at, routed_at, NULL, routed_at
FROM orders, step
WHERE path = 'instant' AND order_id LIKE 'synthetic-%'
"""
_COMPARISONS = """
INSERT INTO comparisons (
    order_id, kind, status, reason, mismatch, candidate, baseline, routed_at, compared_at
)
SELECT order_id, 'shadow', 'compared', NULL,
       CAST(substr(order_id, 11) AS INTEGER) % 1000 = 8,
       '{}', '{}', routed_at, terminal_at
FROM orders
WHERE path = 'shadow' AND order_id LIKE 'synthetic-%'
"""
_COMPARISON_STEPS = """
WITH step(name) AS (
    VALUES ('fraud_scan'), ('authorize_payment'), ('fulfill'), ('outcome')
)
INSERT INTO comparison_steps (order_id, kind, step, verdict, detail, routed_at)
SELECT order_id, 'shadow', step.name,
       CASE WHEN mismatch AND step.name = 'fraud_scan' THEN 'mismatch' ELSE 'match' END,
       CASE WHEN mismatch AND step.name = 'fraud_scan'
            THEN 'decision: ''rejected'' != ''approved''' END,
       routed_at
FROM comparisons, step
WHERE kind = 'shadow' AND order_id LIKE 'synthetic-%'
"""


def fill_history(
    engine: sa.Engine,
    orders: int,
    *,
    until: datetime,
    span: timedelta = timedelta(days=7),
) -> None:
    """Write ``orders`` ended synthetic orders routed in ``[until - span, until)``.

    Creates the schema when missing; one transaction. Raises ValueError for a database
    other than SQLite, fewer than one order, a naive ``until`` or a span that is not
    positive.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError(f"fill_history writes SQLite ledgers, not {engine.dialect.name}")
    if orders < 1 or span <= timedelta(0) or until.tzinfo is None:
        raise ValueError(
            f"need orders >= 1, a positive span and an aware until; got {orders}, {span}, {until}"
        )
    start = (until - span).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    ensure_schema(engine)
    with engine.begin() as conn:
        params = {"orders": orders, "start": start, "step_s": span.total_seconds() / orders}
        conn.execute(sa.text(_ORDERS), params)
        for statement in (_STEPS, _COMPARISONS, _COMPARISON_STEPS):
            conn.execute(sa.text(statement))
        conn.execute(sa.text("ANALYZE"))
