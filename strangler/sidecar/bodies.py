"""Reading request bodies under a size limit (413 beyond it)."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

__all__ = ["read_body"]


def read_body(limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; raises RequestEntityTooLarge (413)."""
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge(f"the body is over the limit of {limit} bytes")
    return data
