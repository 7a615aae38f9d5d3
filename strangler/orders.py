"""The order model: notifications, routing decisions, step results and outcomes.

Pure data and validation; no IO.
"""

from __future__ import annotations

import enum
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from strangler.exceptions import InvalidNotification

__all__ = [
    "ISO_TIMESTAMP",
    "TERMINAL_STATUSES",
    "VISIBLE",
    "Decision",
    "OrderNotification",
    "OrderStatus",
    "Outcome",
    "Route",
    "StepResult",
    "integral",
]

MAX_ID_LENGTH = 128
MAX_EXTRA_DEPTH = 32
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# One character that is neither a control character nor whitespace; spelled out (not \s)
# so that docs/sidecar-api.yaml's patterns say exactly the same in every regex dialect.
VISIBLE = re.compile(
    r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
# The ISO 8601 shapes a timestamp may take: a date, or a date and time with an optional
# fraction (up to microseconds) and an optional zone (docs/sidecar-api.yaml: IsoTimestamp).
ISO_TIMESTAMP = re.compile(
    r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?"
)
# Lone UTF-16 surrogates decode from JSON escapes but cannot be stored as UTF-8 text.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_TOO_DEEP = "is nested too deeply to be an order notification"
_CURRENCY = re.compile(r"[A-Z]{3}")
_ID_FIELDS = ("order_id", "user_guid", "unit_id")
_OPTIONAL_STRINGS = ("city", "payment_token")
_OPTIONAL_COUNTS = ("amount_cents", "quantity")
_KNOWN_FIELDS = frozenset(
    (*_ID_FIELDS, *_OPTIONAL_STRINGS, *_OPTIONAL_COUNTS, "currency", "created_at")
)


class Route(enum.StrEnum):
    """Where an order is processed (was ``Path`` before 0.2, which shadowed pathlib's)."""

    LEGACY = "legacy"
    INSTANT = "instant"
    SHADOW = "shadow"


class Outcome(enum.StrEnum):
    """Terminal business outcome of an order."""

    FULFILLED = "fulfilled"
    REJECTED_FRAUD = "rejected_fraud"
    PAYMENT_DECLINED = "payment_declined"
    FAILED = "failed"


class OrderStatus(enum.StrEnum):
    """Status of an order in the ledger; the last four are terminal."""

    RECEIVED = "received"
    ROUTED = "routed"
    RUNNING = "running"
    FELL_BACK = "fell_back"
    FULFILLED = "fulfilled"
    REJECTED_FRAUD = "rejected_fraud"
    PAYMENT_DECLINED = "payment_declined"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True for the statuses an order never leaves."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FULFILLED,
        OrderStatus.REJECTED_FRAUD,
        OrderStatus.PAYMENT_DECLINED,
        OrderStatus.FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class OrderNotification:
    """A validated order notification, as the order service publishes it.

    Build one with :meth:`from_dict` or :meth:`from_json`; they check every field and
    raise :class:`InvalidNotification` listing all offending fields at once. Unknown
    fields are kept in ``extra``. ``payment_token`` is payment data: it is left out of
    ``repr`` and :meth:`log_fields`.
    """

    order_id: str
    user_guid: str
    unit_id: str
    city: str | None = None
    amount_cents: int | None = None
    currency: str | None = None
    quantity: int | None = None
    payment_token: str | None = field(default=None, repr=False)
    created_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_json(cls, raw: str | bytes) -> OrderNotification:
        """Parse and validate a JSON object; raises InvalidNotification."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidNotification({"body": f"not valid JSON ({exc})"}) from exc
        except RecursionError as exc:
            raise InvalidNotification({"body": _TOO_DEEP}) from exc
        if not isinstance(data, dict):
            raise InvalidNotification({"body": "must be a JSON object"})
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderNotification:
        """Validate a mapping of fields; raises InvalidNotification naming every bad field."""
        errors: dict[str, str] = {}
        for name in _ID_FIELDS:
            _check_id(name, data.get(name), errors)
        for name in _OPTIONAL_STRINGS:
            _check_optional_string(name, data.get(name), errors)
        counts = {name: _optional_count(name, data.get(name), errors) for name in _OPTIONAL_COUNTS}
        _check_currency(data.get("currency"), errors)
        created_at = _parse_created_at(data.get("created_at"), errors)
        extra = {k: v for k, v in data.items() if k not in _KNOWN_FIELDS}
        for name, value in extra.items():
            _check_extra(name, value, errors)
        if errors:
            raise InvalidNotification(errors)
        return cls(
            order_id=data["order_id"],
            user_guid=data["user_guid"],
            unit_id=data["unit_id"],
            city=data.get("city"),
            amount_cents=counts["amount_cents"],
            currency=data.get("currency"),
            quantity=counts["quantity"],
            payment_token=data.get("payment_token"),
            created_at=created_at,
            extra=MappingProxyType(extra),
        )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> OrderNotification:
        """Rebuild a notification from :meth:`to_dict`'s data without validating it again:
        only for data written from a notification that :meth:`from_dict` accepted (the
        ledger's stored form); validating it again cost each claimed order about 6 us."""
        created_at = data.get("created_at")
        return cls(
            order_id=data["order_id"],
            user_guid=data["user_guid"],
            unit_id=data["unit_id"],
            city=data.get("city"),
            amount_cents=data.get("amount_cents"),
            currency=data.get("currency"),
            quantity=data.get("quantity"),
            payment_token=data.get("payment_token"),
            created_at=datetime.fromisoformat(created_at) if created_at else None,
            extra=MappingProxyType({k: v for k, v in data.items() if k not in _KNOWN_FIELDS}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The notification as JSON-ready data, extra fields included, None fields left out."""
        data: dict[str, Any] = dict(self.extra)
        data.update(
            order_id=self.order_id,
            user_guid=self.user_guid,
            unit_id=self.unit_id,
            city=self.city,
            amount_cents=self.amount_cents,
            currency=self.currency,
            quantity=self.quantity,
            payment_token=self.payment_token,
            created_at=self.created_at.isoformat() if self.created_at else None,
        )
        return {k: v for k, v in data.items() if v is not None}

    def log_fields(self) -> dict[str, Any]:
        """Fields safe to log: identifiers and amounts, never payment data."""
        return {
            "order_id": self.order_id,
            "user_guid": self.user_guid,
            "unit_id": self.unit_id,
            "city": self.city,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing decision for one order, with what it was based on."""

    path: Route
    variant: str
    rollout: int
    flag_revision: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the ledger and the HTTP API show it."""
        return {
            "path": self.path.value,
            "variant": self.variant,
            "rollout": self.rollout,
            "flag_revision": self.flag_revision,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step of one path did for one order.

    ``step`` is one of ``claim``, ``fraud_scan``, ``authorize_payment``, ``fulfill``,
    ``release``; ``decision`` is the step's verdict (``pass``/``reject``,
    ``authorized``/``declined``, ``fulfilled``, ``claimed``, ``released``), or None when
    the step errored.
    """

    order_id: str
    path: Route
    step: str
    decision: str | None
    started_at: datetime
    finished_at: datetime
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    error: str | None = None
    dry_run: bool = False


def _check_id(name: str, value: Any, errors: dict[str, str]) -> None:
    if value is None:
        errors[name] = "is required"
    elif not isinstance(value, str):
        errors[name] = f"must be a string, got {type(value).__name__}"
    elif not VISIBLE.search(value):
        errors[name] = "must not be empty"
    elif len(value) > MAX_ID_LENGTH:
        errors[name] = f"must be at most {MAX_ID_LENGTH} characters, got {len(value)}"
    elif _CONTROL_CHARS.search(value):
        errors[name] = "must not contain control characters"
    elif _SURROGATES.search(value):
        errors[name] = "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
    elif name == "order_id" and "/" in value:
        errors[name] = "must not contain '/' (the id is a path segment of its story's URL)"


def _check_optional_string(name: str, value: Any, errors: dict[str, str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors[name] = f"must be a string, got {type(value).__name__}"
    elif _CONTROL_CHARS.search(value):
        errors[name] = "must not contain control characters"
    elif _SURROGATES.search(value):
        errors[name] = "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"


def _check_extra(name: str, value: Any, errors: dict[str, str]) -> None:
    """An extra field is kept as JSON: finite numbers, storable text, bounded depth.

    Storable text has no lone surrogates and no NUL: PostgreSQL's jsonb cannot hold a
    NUL character in any string or key.
    """
    problem = _json_problem(value, depth=0)
    if "\x00" in name:
        name = name.replace("\x00", "\\u0000")  # the error names it; the ledger keeps it
        problem = "the field name must not contain NUL (\\u0000)"
    if _SURROGATES.search(name):
        name = name.encode("utf-8", "backslashreplace").decode()
        problem = "the field name must not contain lone UTF-16 surrogates"
    if problem is not None:
        errors[name] = problem


def _text_problem(text: str) -> str | None:
    if _SURROGATES.search(text):
        return "lone UTF-16 surrogates (\\ud800-\\udfff)"
    if "\x00" in text:
        return "NUL (\\u0000)"
    return None


def _json_problem(value: Any, *, depth: int) -> str | None:
    if depth > MAX_EXTRA_DEPTH:
        return f"is nested deeper than {MAX_EXTRA_DEPTH} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r} (not valid JSON)"
    if isinstance(value, str):
        bad = _text_problem(value)
        return None if bad is None else f"must not contain {bad}"
    items: list[Any] = []
    if isinstance(value, dict):
        bad = next(filter(None, (_text_problem(str(key)) for key in value)), None)
        if bad is not None:
            return f"has a key with {bad}"
        items = list(value.values())
    elif isinstance(value, list):
        items = value
    for item in items:
        problem = _json_problem(item, depth=depth + 1)
        if problem is not None:
            return problem
    return None


def integral(value: Any) -> int | None:
    """``value`` as an int when JSON Schema calls it an integer (``5``, ``5.0``), else None.

    Booleans are not integers here, whatever Python says.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _optional_count(name: str, value: Any, errors: dict[str, str]) -> int | None:
    if value is None:
        return None
    count = integral(value)
    if count is None:
        errors[name] = f"must be a whole number, got {value!r}"
    elif count < 0:
        errors[name] = f"must not be negative, got {value}"
    return count


def _check_currency(value: Any, errors: dict[str, str]) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        errors["currency"] = f"must be three capital letters (ISO 4217), got {value!r}"


def _parse_created_at(value: Any, errors: dict[str, str]) -> datetime | None:
    """None when left out, null or "" (no value); else an ISO 8601 timestamp of a real date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors["created_at"] = f"must be an ISO-8601 string, got {type(value).__name__}"
        return None
    try:
        if not ISO_TIMESTAMP.fullmatch(value):
            raise ValueError(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors["created_at"] = (
            f"must be an ISO-8601 timestamp such as 2030-01-31T12:00:00Z, got {value!r}"
        )
        return None


def __getattr__(name: str) -> Any:
    """Keep ``strangler.orders.Path`` importable for one release, with a warning."""
    if name == "Path":
        warnings.warn(
            "strangler.orders.Path is renamed Route and the old name goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return Route
    raise AttributeError(f"module 'strangler.orders' has no attribute {name!r}")
