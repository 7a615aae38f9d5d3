"""The report as JSON: stable, versioned (``schema_version``), described by docs/report.schema.json.

Field names are the dataclass field names of :mod:`strangler.report.report`; datetimes
are ISO 8601 UTC strings, rates are fractions, times are seconds, an open-ended histogram
edge is ``null``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from strangler.report.report import Report

__all__ = ["render_json", "report_to_dict"]


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data (what ``GET /_strangler/report`` answers)."""
    data = _plain(dataclasses.asdict(report))
    data["verdict"]["reasons"] = list(report.verdict.reasons)
    return data  # type: ignore[no-any-return]


def render_json(report: Report) -> str:
    """The report as an indented JSON document ending in a newline."""
    return json.dumps(report_to_dict(report), indent=2, sort_keys=False) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
