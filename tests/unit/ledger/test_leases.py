"""A claimed order's notification, rebuilt from its stored form without validating again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strangler.ledger import SqlLedger
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.redact import stored_notification
from strangler.orders import OrderNotification
from tests.unit.ledger.support import make_order

NOTIFICATIONS: list[dict[str, Any]] = [
    {},
    {"city": "Austin", "amount_cents": 2500, "currency": "USD", "quantity": 2},
    {"amount_cents": 2500.0, "quantity": 0},
    {"created_at": "2030-01-31T12:00:00Z"},
    {"created_at": "2030-01-31T12:00:00.25+02:00"},
    {"created_at": "2030-01-31"},
    {"created_at": "2030-01-31 12:00"},
    {"created_at": ""},
    {"city": "", "payment_token": "tok_1"},
    {"extra": 1, "wallet": {"kind": "v", "card": "4111"}, "tags": ["a", {"b": None}]},
]
IDS = [
    "required-only",
    "every-field",
    "integral-float-count",
    "created-at-zulu",
    "created-at-offset-fraction",
    "created-at-date",
    "created-at-no-seconds",
    "created-at-empty",
    "empty-city-and-token",
    "extra-fields",
]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger = SqlLedger(engine)
    yield ledger
    ledger.close()


@pytest.mark.parametrize("fields", NOTIFICATIONS, ids=IDS)
def test_a_stored_notification_comes_back_as_from_dict_builds_it(fields: dict[str, Any]) -> None:
    """Rebuilt from its stored form, a notification equals from_dict's, field by field."""
    stored = stored_notification(make_order("o-1", **fields))
    expected = OrderNotification.from_dict(stored)
    actual = OrderNotification.from_stored(stored)
    assert (expected, repr(expected)) == (actual, repr(actual))
    assert [type(getattr(expected, f)) for f in expected.__slots__] == [
        type(getattr(actual, f)) for f in actual.__slots__
    ]


def test_a_claim_does_not_validate_the_stored_notification_again(
    ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claimed order's notification is rebuilt from the ledger without from_dict: the
    intake validated it before the ledger stored it."""
    order = make_order("o-1", city="Austin", created_at="2030-01-31T12:00:00Z", note="n")
    ledger.record_received(order, source="api")

    def refuse(_data: object) -> OrderNotification:
        raise AssertionError("validated again")

    monkeypatch.setattr(OrderNotification, "from_dict", refuse)
    [leased] = ledger.claim_due("a", limit=1, lease_seconds=10)
    assert order == leased.notification
