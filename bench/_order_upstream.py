"""An order service for bench/order_route.py: ``POST /orders`` answers 201 with a new order."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

_PREFIX = f"bench-{os.getpid()}"
_COUNTER = itertools.count()
_READY = b'{"ok":true}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """201 with a fresh order (unique order_id) for POST /orders, 200 for anything else."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_READY]
    n = next(_COUNTER)
    body = json.dumps(
        {"order_id": f"{_PREFIX}-{n}", "user_guid": f"u-{n % 997}", "unit_id": "unit-1"}
    ).encode()
    start_response(
        "201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
