"""Readable text for an execution: a summary, its steps, and its history, one line each.

Used by ``docs/instant.md`` and handy at a REPL::

    print(describe(backend.run(order)))
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from strangler.instant.results import ExecutionResult
from strangler.instant.steps import event_details, event_time, parse_cause

__all__ = ["describe", "format_history"]

MAX_DETAIL_CHARS = 90


def describe(result: ExecutionResult) -> str:
    """A summary of the execution, its steps, and its history, as lines of text."""
    took = ""
    if result.finished_at is not None:
        took = f" in {(result.finished_at - result.started_at).total_seconds() * 1000:.1f} ms"
    lines = [
        f"execution {result.execution_id}",
        f"  order {result.order_id}  {result.status}  outcome={result.outcome}"
        f"  dry_run={str(result.dry_run).lower()}{took}",
    ]
    if result.error:
        lines.append(f"  error {result.error}: {parse_cause(result.cause)}")
    lines.append("steps:")
    for step in result.steps:
        spent = (step.finished_at - step.started_at).total_seconds() * 1000
        verdict = step.decision if step.error is None else _cut(f"ERROR {step.error}", 70)
        retried = len(step.payload.get("attempt_errors", ()))
        extra = f"  ({retried} failed attempt(s))" if retried and step.error is None else ""
        lines.append(f"  {step.step:<18} {verdict:<14} {spent:7.1f} ms{extra}")
    lines.append("history:")
    lines.append(format_history(result.history))
    return "\n".join(lines)


def format_history(history: Iterable[Mapping[str, Any]]) -> str:
    """One line per event: milliseconds since the first event, type, state, and detail."""
    events = list(history)
    if not events:
        return "  (no events)"
    start = event_time(events[0])
    lines = []
    for event in events:
        offset = (event_time(event) - start).total_seconds() * 1000
        details = event_details(event)
        state = details.get("name", "")
        lines.append(
            f"  {offset:8.1f} ms  {event.get('type', '?'):<28} {state:<20} "
            f"{_detail(details)}".rstrip()
        )
    return "\n".join(lines)


def _detail(details: Mapping[str, Any]) -> str:
    if "error" in details:
        text = f"{details['error']}: {parse_cause(details.get('cause'))}"
    elif "output" in details and "name" not in details:
        text = _compact(details["output"])
    elif "input" in details and "name" not in details:
        text = _compact(details["input"])
    else:
        return ""
    return _cut(text, MAX_DETAIL_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _compact(raw: Any) -> str:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return str(raw)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
