"""The story of one order: the JSON ``GET /_strangler/orders/<id>`` answers with.

Pure shaping of rows already read; no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["STATUS_TIMESTAMPS", "build_story"]

# Each status and the orders column holding when the order reached it.
STATUS_TIMESTAMPS = {
    "received": "received_at",
    "routed": "routed_at",
    "running": "running_at",
    "fell_back": "fell_back_at",
    "terminal": "terminal_at",
}


def build_story(
    order: Mapping[Any, Any],
    steps: Iterable[Mapping[Any, Any]],
    transitions: Iterable[Mapping[Any, Any]],
) -> dict[str, Any]:
    """Shape an orders row, its step_results rows and its transitions rows as JSON data."""
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "source": order["source"],
        "decision": _decision(order),
        "outcome": order["outcome"],
        "handoff": order["handoff"],
        "attempts": order["attempts"],
        "last_error": order["last_error"],
        "dry_run_outcome": order["dry_run_outcome"],
        "legacy_status": order["legacy_status"],
        "notification": dict(order["notification"]),
        "timestamps": {status: _iso(order[column]) for status, column in STATUS_TIMESTAMPS.items()},
        "transitions": [
            {"status": "received", "at": _iso(order["received_at"]), "reason": None},
            *(
                {"status": row["status"], "at": _iso(row["at"]), "reason": row["reason"]}
                for row in transitions
            ),
        ],
        "steps": [_step(row) for row in steps],
    }


def _decision(order: Mapping[Any, Any]) -> dict[str, Any] | None:
    if order["path"] is None:
        return None
    return {
        "path": order["path"],
        "variant": order["variant"],
        "rollout": order["rollout"],
        "flag_revision": order["flag_revision"],
        "reason": order["decision_reason"],
    }


def _step(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "path": row["path"],
        "step": row["step"],
        "seq": row["seq"],
        "dry_run": row["dry_run"],
        "decision": row["decision"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "error": row["error"],
        "payload": dict(row["payload"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
