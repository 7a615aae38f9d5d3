"""Order-creation interception: which answers carry an order, and how to read it.

Pure parsing; no IO. The proxy tees the answer body of the configured route and hands
it here after the answer has been sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strangler.exceptions import ConfigurationError, InvalidNotification
from strangler.orders import OrderNotification

__all__ = ["FieldMapping", "OrderRoute", "notification_from_answer"]

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_ID_FIELDS = frozenset({"order_id", "user_guid", "unit_id"})


@dataclass(frozen=True, slots=True)
class OrderRoute:
    """The method and path of the order-creating request, e.g. ``POST /orders``."""

    method: str
    path: str

    @classmethod
    def parse(cls, spec: str) -> OrderRoute:
        """Parse ``"METHOD /path"``; raises ConfigurationError naming STRANGLER_ORDER_ROUTE."""
        parts = spec.split()
        if len(parts) != 2 or parts[0].upper() not in _METHODS or not parts[1].startswith("/"):
            raise ConfigurationError(
                f"STRANGLER_ORDER_ROUTE must look like 'POST /orders' (a method and a path "
                f"starting with /), got {spec!r}"
            )
        return cls(method=parts[0].upper(), path=parts[1].rstrip("/") or "/")

    def matches(self, method: str, path: str) -> bool:
        """True for this method and path (a trailing slash is ignored)."""
        return method == self.method and (path.rstrip("/") or "/") == self.path


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where each notification field is found in the answer (dotted paths).

    Built from ``STRANGLER_ORDER_FIELDS`` items such as ``order_id=id`` and
    ``user_guid=customer.guid``. Fields without a mapping are taken by their own name.
    A whole number found for ``order_id``, ``user_guid`` or ``unit_id`` becomes its
    decimal string, since order services often number their orders.
    """

    sources: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, items: Sequence[str]) -> FieldMapping:
        """Parse ``target=dotted.source`` items; raises ConfigurationError."""
        sources: list[tuple[str, tuple[str, ...]]] = []
        for item in items:
            target, sep, source = (part.strip() for part in item.partition("="))
            if not sep or not target or not source or "" in source.split("."):
                raise ConfigurationError(
                    "STRANGLER_ORDER_FIELDS items must look like 'order_id=id' or "
                    f"'user_guid=customer.guid', got {item!r}"
                )
            sources.append((target, tuple(source.split("."))))
        return cls(tuple(sources))

    def apply(self, answer: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The notification fields, and for each mapped field the dotted source it came from."""
        fields = dict(answer)
        origins: dict[str, str] = {}
        for target, path in self.sources:
            origins[target] = ".".join(path)
            value = _lookup(answer, path)
            if value is None:
                fields.pop(target, None)
            elif target in _ID_FIELDS and isinstance(value, int) and not isinstance(value, bool):
                fields[target] = str(value)
            else:
                fields[target] = value
        return fields, origins


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def notification_from_answer(body: bytes, mapping: FieldMapping) -> OrderNotification:
    """Read the order notification from an order-creating answer.

    Raises InvalidNotification naming every bad field; a mapped field's reason says
    which answer field it was read from.
    """
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidNotification({"body": f"the answer is not valid JSON ({exc})"}) from exc
    if not isinstance(answer, dict):
        raise InvalidNotification({"body": "the answer must be a JSON object"})
    fields, origins = mapping.apply(answer)
    try:
        return OrderNotification.from_dict(fields)
    except InvalidNotification as exc:
        raise InvalidNotification(
            {
                name: f"{why} (read from {origins[name]!r})" if name in origins else why
                for name, why in exc.errors.items()
            }
        ) from exc
