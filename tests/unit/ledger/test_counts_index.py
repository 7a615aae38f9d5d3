"""SqlLedger.counts() reads one index, never the orders' rows (a /metrics scrape runs it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from strangler.ledger import ledger_from_url
from strangler.ledger.statements import ORDER_COUNTS
from strangler.ledger.synthetic import fill_history


def test_order_counts_scan_the_covering_index_in_order(tmp_path: Path) -> None:
    """The plan is a covering index scan with no sort, so the cost is the index's size."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        fill_history(ledger.engine, 200, until=datetime(2025, 3, 1, tzinfo=UTC))
        with ledger.engine.connect() as conn:
            sql = str(ORDER_COUNTS.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        assert plan == ["SCAN orders USING COVERING INDEX ix_orders_counts"]
        counts = ledger.counts()
        assert counts.total == 200
        assert counts.by_source == {"notifications": 200}
        assert sum(n for (path, _), n in counts.by_path_status.items() if path == "instant") == 60
        assert counts.handoffs == {"fallback": 2}  # synthetic orders 7 and 107
        with ledger.engine.connect() as conn:
            errors = conn.execute(
                sa.text(
                    "SELECT count(*) FROM orders WHERE path = 'instant'"
                    " AND (outcome = 'failed' OR handoff = 'fallback')"
                )
            ).scalar_one()
        assert counts.instant_errors == errors
    finally:
        ledger.close()
