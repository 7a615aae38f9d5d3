"""The step rows' parameters for SQLite, built straight as positional tuples.

A finish writes four step rows; through the driver's general path each row is a dict of
eleven values, merged, picked and converted one parameter at a time (about a fifth of a
finish's CPU). Here each row is one tuple in the order of
:data:`strangler.ledger.statements.STEP_COLUMNS`, its values converted exactly as the
columns' types convert them on SQLite (tests/unit/ledger compares the two): UTC
datetimes as the driver's text, the payload as ``json.dumps`` writes it, ``dry_run``
as 0 or 1, ``recorded_at`` converted once for all the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from strangler.ledger.driver import json_text, utc_text
from strangler.orders import StepResult

__all__ = ["step_params"]

# SQLite's Boolean: 0 or 1 (anything but a bool is refused, as the column type refuses it).
_BOOLEAN = {False: 0, True: 1}


def step_params(
    steps: Sequence[tuple[StepResult, int]], recorded_at: datetime
) -> list[tuple[Any, ...]]:
    """The (step, seq) pairs as step_results rows recorded at ``recorded_at``.

    Raises ValueError for a naive datetime and KeyError for a ``dry_run`` not a bool."""
    recorded = utc_text(recorded_at)
    return [
        (
            step.order_id,
            step.path.value,
            step.step,
            _BOOLEAN[step.dry_run],
            seq,
            step.decision,
            json_text(step.payload if type(step.payload) is dict else dict(step.payload)),
            utc_text(step.started_at),
            utc_text(step.finished_at),
            step.error,
            recorded,
        )
        for step, seq in steps
    ]
