"""The flag file a bench routes by: the shipped flag with its rollout and instant share set.

The shipped flag starts shadow-first (every flagged order runs in shadow), so a bench of
the instant path must give the instant variant its share itself.
"""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED_FLAG = (
    Path(__file__).resolve().parent.parent / "flags" / "city_orders_instant_processing.json"
)


def write_flag(path: Path, *, rollout: int, instant_percent: int = 100) -> Path:
    """Write the shipped flag to ``path`` with ``rollout`` % flagged, ``instant_percent`` %
    of those on instant and the rest in shadow."""
    document = json.loads(SHIPPED_FLAG.read_text())
    strategy = document["features"][0]["strategies"][0]
    strategy["parameters"]["rollout"] = str(rollout)
    weights = {"instant": instant_percent * 10, "shadow": (100 - instant_percent) * 10}
    for variant in strategy["variants"]:
        variant["weight"] = weights[variant["name"]]
    path.write_text(json.dumps(document))
    return path
