"""Fallback causes in an open report: one line, no stack trace, no server file paths."""

from __future__ import annotations

import pytest

from strangler.report.report import public_cause

TRACE = (
    "instant pipeline fell back: States.TaskFailed: Traceback (most recent call last):\n"
    '  File "/srv/app/strangler/instant/handlers.py", line 12, in run\n'
    "    step()\n"
    "LegacyUnavailable: 502 from http://127.0.0.1:8001/orders/o-1"
)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            TRACE,
            "instant pipeline fell back: States.TaskFailed: "
            "LegacyUnavailable: 502 from http://127.0.0.1:8001/orders/o-1",
        ),
        ("error at /home/app/.venv/lib/adapters.py: boom", "error at <path>: boom"),
        (
            "the batch jobs had the order already (claim lost); legacy runs it",
            "the batch jobs had the order already (claim lost); legacy runs it",
        ),
        ("first line\nsecond line", "first line"),
        ("", "unrecorded"),
        ("x" * 500, "x" * 200),
    ],
    ids=["traceback", "path", "plain", "multi-line", "empty", "long"],
)
def test_public_cause(raw: str, shown: str) -> None:
    """A traceback keeps its error line, paths are hidden, URLs and plain causes are kept."""
    assert shown == public_cause(raw)
