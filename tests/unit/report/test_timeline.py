"""The rollout timeline: what each change reads as, and the shares the chart plots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from strangler.report.report import RolloutPoint
from strangler.report.timeline import describe_change

AT = datetime(2030, 1, 1, tzinfo=UTC)


def _point(**fields: Any) -> RolloutPoint:
    values: dict[str, Any] = {
        "at": AT,
        "actor": "ana",
        "from_rollout": 60,
        "to_rollout": 60,
        "reason": "r",
        "flag_revision": "rev",
    }
    return RolloutPoint(**{**values, **fields})


@pytest.mark.parametrize(
    ("fields", "shares", "text"),
    [
        ({}, (60.0, 0.0), "60 -> 60 %"),
        (
            {
                "kind": "kill",
                "enabled": False,
                "instant_weight": 100,
                "shadow_weight": 0,
                "stage": "live",
            },
            (0.0, 0.0),
            "kill: 60 -> 60 %, instant=100% shadow=0%, killed; stage live",
        ),
        (
            {
                "kind": "gate_advance",
                "from_rollout": 100,
                "to_rollout": 100,
                "enabled": True,
                "instant_weight": 10,
                "shadow_weight": 90,
                "stage": "live",
            },
            (10.0, 90.0),
            "gate_advance: 100 -> 100 %, instant=10% shadow=90%; stage live",
        ),
        (
            {
                "kind": "set",
                "from_rollout": 0,
                "to_rollout": 10,
                "enabled": True,
                "instant_weight": 100,
                "shadow_weight": 0,
                "stage": "live",
                "no_evidence": True,
            },
            (10.0, 0.0),
            "set: 0 -> 10 %, instant=100% shadow=0%; stage live; "
            "went live without comparison evidence (--no-evidence)",
        ),
    ],
    ids=["before-v3", "kill", "shadow-first-advance", "no-evidence"],
)
def test_a_change_reads_as_its_kind_and_charts_its_shares(
    fields: dict[str, Any], shares: tuple[float, float], text: str
) -> None:
    """A kill reads as a kill and charts 0 %; a shadow-first step moves the instant share."""
    point = _point(**fields)
    assert (point.shares, describe_change(point)) == (shares, text)
