"""The ledger's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

Bump :data:`SCHEMA_VERSION` with every change to these tables and add the step that
brings an older database up to date in :mod:`strangler.ledger.migrate`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

__all__ = [
    "ROLLOUT_EVENT_V3_COLUMNS",
    "SCHEMA_VERSION",
    "UTCDateTime",
    "comparison_steps",
    "comparisons",
    "kv",
    "metadata",
    "order_durations",
    "orders",
    "rejected_intake",
    "rollout_events",
    "schema_version",
    "step_results",
    "transitions",
    "worker_leases",
]

SCHEMA_VERSION = 5
ID_LENGTH = 128


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as
    naive UTC (the fixed-width text sorts, so comparisons in SQL stay correct) and come
    back aware.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"the ledger stores aware datetimes only, got naive {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: Any,
        dialect: Dialect,  # noqa: ARG002 (the signature is TypeDecorator's)
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


_json = sa.JSON().with_variant(JSONB(), "postgresql")
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(ID_LENGTH), primary_key=True),
    # The notification without payment data (see docs/ledger.md).
    sa.Column("notification", _json, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    # The pinned decision; NULL until the order is routed.
    sa.Column("path", sa.String(16)),
    sa.Column("variant", sa.String(64)),
    sa.Column("rollout", sa.Integer),
    sa.Column("flag_revision", sa.String(128)),
    sa.Column("decision_reason", sa.Text),
    # One timestamp per transition.
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("routed_at", UTCDateTime),
    sa.Column("running_at", UTCDateTime),
    sa.Column("fell_back_at", UTCDateTime),
    sa.Column("terminal_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(20)),
    # 'fallback' (instant gave it back) or 'legacy_owned' (the batch jobs had it first).
    sa.Column("handoff", sa.String(16)),
    sa.Column("dry_run_outcome", sa.String(20)),
    # The dispatcher's work queue: due when needs_dispatch and next_attempt_at has passed.
    sa.Column("needs_dispatch", sa.Boolean, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(ID_LENGTH)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    # What the legacy app last reported (kept for orders routed after legacy moved them).
    sa.Column("legacy_status", sa.String(20)),
    sa.Column("legacy_terminal_at", UTCDateTime),
    # When the legacy follower last saw the order in the legacy app.
    sa.Column("follow_checked_at", UTCDateTime),
    sa.Index("ix_orders_due", "needs_dispatch", "next_attempt_at"),
    sa.Index(
        "ix_orders_open",
        "follow_checked_at",
        postgresql_where=sa.text("terminal_at IS NULL"),
        sqlite_where=sa.text("terminal_at IS NULL"),
    ),
    # v4: status first (what ix_orders_status was) and the columns /metrics counts by, so
    # SqlLedger.counts() reads this index alone, in its order (no table rows, no sort).
    sa.Index("ix_orders_counts", "status", "path", "source", "handoff", "outcome"),
)

step_results = sa.Table(
    "step_results",
    metadata,
    sa.Column("id", _big_id, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(ID_LENGTH), sa.ForeignKey("orders.order_id"), nullable=False),
    sa.Column("path", sa.String(16), nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    # The step's occurrence within its path (a batch job may retry a step).
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(32)),
    sa.Column("payload", _json, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("order_id", "path", "step", "dry_run", "seq", name="uq_step_results_step"),
)

# v5: no row for a move the orders row holds (strangler.ledger.moves).
transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", _big_id, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(ID_LENGTH), sa.ForeignKey("orders.order_id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text),
    sa.UniqueConstraint("order_id", "status", name="uq_transitions_status"),
)

rejected_intake = sa.Table(
    "rejected_intake",
    metadata,
    sa.Column("id", _big_id, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # Payment fields masked, cut at MAX_REJECTED_BODY bytes (see docs/ledger.md).
    sa.Column("raw_body", sa.LargeBinary, nullable=False),
    sa.Column("body_size", sa.Integer, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "body_sha256", name="uq_rejected_intake_body"),
)

#: The columns v3 added to rollout_events (the migration adds them to an older ledger).
ROLLOUT_EVENT_V3_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "kind": sa.String(24),
    "enabled": sa.Boolean(),
    "instant_weight": sa.Float(),
    "shadow_weight": sa.Float(),
    "stage": sa.String(16),
    "changed": sa.Boolean(),
    "no_evidence": sa.Boolean(),
}

rollout_events = sa.Table(
    "rollout_events",
    metadata,
    sa.Column("id", _big_id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("from_rollout", sa.Integer),
    sa.Column("to_rollout", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flag_revision", sa.String(128), nullable=False),
    # v3: what the change was and the flag after it, so a kill, an enable or a variant
    # change is told apart from a percentage change; NULL on events kept before v3.
    *(sa.Column(name, type_) for name, type_ in ROLLOUT_EVENT_V3_COLUMNS.items()),
    sa.UniqueConstraint("at", "flag_revision", name="uq_rollout_events_change"),
)

# Roles one process at a time should play (the legacy follower), held until expiry.
worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(ID_LENGTH), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# v2: shadow comparisons. One row per order and kind, written once, when the comparison
# runs or is given up (docs/reports.md): 'shadow' compares the instant dry run with the
# batch jobs; 'noise' compares the per-order API's dry run of an order with a second
# dry run of the same order later (repeatability, strangler.background.noise).
comparisons = sa.Table(
    "comparisons",
    metadata,
    sa.Column("order_id", sa.String(ID_LENGTH), sa.ForeignKey("orders.order_id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    # 'compared' or 'not_compared'; a not-compared row names its reason.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64)),
    # Any step mismatched; NULL when not compared.
    sa.Column("mismatch", sa.Boolean),
    # Each side as the comparators saw it (decisions, reasons, voucher counts; no payment data).
    sa.Column("candidate", _json, nullable=False),
    sa.Column("baseline", _json, nullable=False),
    # The order's routed_at, copied so that report windows need no join.
    sa.Column("routed_at", UTCDateTime, nullable=False),
    sa.Column("compared_at", UTCDateTime, nullable=False),
    sa.Index("ix_comparisons_window", "kind", "routed_at"),
)

# One row per compared step (the outcome counts as the step 'outcome'), for SQL aggregation.
comparison_steps = sa.Table(
    "comparison_steps",
    metadata,
    sa.Column("order_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("step", sa.String(32), primary_key=True),
    # 'match' or 'mismatch'.
    sa.Column("verdict", sa.String(16), nullable=False),
    # Which fields differ, e.g. "decision: 'approved' != 'rejected'"; NULL on a match.
    sa.Column("detail", sa.Text),
    sa.Column("routed_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(["order_id", "kind"], ["comparisons.order_id", "comparisons.kind"]),
    sa.Index("ix_comparison_steps_window", "kind", "step", "routed_at"),
)

# v4: the processing-time histogram, kept at write time. One row per (path, outcome,
# bucket, shard): how many orders ended there and their seconds to terminal, added by a
# trigger on orders in the transaction that makes an order terminal (strangler.ledger.
# tally), never taken back (archiving keeps the counts). ``bucket`` indexes
# durations.ORDER_BUCKETS_S (its length: above the last bound); ``shard`` spreads
# concurrent PostgreSQL writers over rows (always 0 on SQLite).
order_durations = sa.Table(
    "order_durations",
    metadata,
    sa.Column("path", sa.String(16), primary_key=True),
    sa.Column("outcome", sa.String(20), primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("total_s", sa.Float, nullable=False),
)
