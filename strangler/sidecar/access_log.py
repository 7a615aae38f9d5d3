"""One structlog line per request, with the order_id when the request concerns one order."""

from __future__ import annotations

from typing import Any

import structlog

__all__ = ["AccessLog"]


class AccessLog:
    """Writes the ``request`` event: method, path (no query), status, duration, order_id."""

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger("strangler.access")

    def record(
        self,
        *,
        method: str,
        path: str,
        status: int,
        duration_s: float,
        order_id: str | None = None,
        **extra: Any,
    ) -> None:
        """Log one finished request; ``extra`` adds fields such as ``upstream=True``."""
        fields = {} if order_id is None else {"order_id": order_id}
        self._log.info(
            "request",
            method=method,
            path=path,
            status=status,
            duration_ms=round(duration_s * 1000.0, 3),
            **fields,
            **extra,
        )
