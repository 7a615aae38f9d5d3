"""The legacy app's business rules, as docs/legacy.md states them."""

from __future__ import annotations

import pytest

from strangler.sim import rules
from strangler.sim.exceptions import GatewayError

RULES = rules.Rules(fraud_limit_cents=100_000, blocked_users=frozenset({"user-bad"}))


def facts(**changes: object) -> rules.OrderFacts:
    base: dict[str, object] = {
        "order_id": "ord-1",
        "user_guid": "user-1",
        "amount_cents": 2500,
        "quantity": 1,
        "payment_token": "tok_visa_4242",
    }
    base.update(changes)
    return rules.OrderFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, rules.Verdict("pass")),
        ({"amount_cents": 100_000}, rules.Verdict("pass")),
        ({"amount_cents": 100_001}, rules.Verdict("reject", "amount_over_limit")),
        ({"amount_cents": None}, rules.Verdict("pass")),
        ({"user_guid": "user-bad"}, rules.Verdict("reject", "blocked_user")),
        ({"payment_token": "fraud_abc"}, rules.Verdict("reject", "fraud_token")),
        ({"payment_token": None}, rules.Verdict("pass")),
        (
            {"user_guid": "user-bad", "amount_cents": 999_999, "payment_token": "fraud_x"},
            rules.Verdict("reject", "blocked_user"),
        ),
    ],
    ids=[
        "clean",
        "at-limit",
        "over-limit",
        "no-amount",
        "blocklist",
        "fraud-token",
        "no-token",
        "blocklist-checked-first",
    ],
)
def test_fraud_scan(changes: dict[str, object], expected: rules.Verdict) -> None:
    """Fraud scan rejects blocklisted users, amounts over the limit and fraud_ tokens."""
    assert expected == rules.fraud_scan(facts(**changes), RULES)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("tok_visa_4242", rules.Verdict("authorized")),
        (None, rules.Verdict("authorized")),
        ("decline_insufficient", rules.Verdict("declined", "card_declined")),
        ("fraud_x", rules.Verdict("authorized")),
    ],
    ids=["card", "card-on-file", "decline", "fraud-token-not-a-payment-rule"],
)
def test_authorize_payment(token: str | None, expected: rules.Verdict) -> None:
    """Payment declines decline_ tokens and authorizes everything else."""
    assert expected == rules.authorize_payment(facts(payment_token=token))


def test_error_tokens_make_the_gateway_fail() -> None:
    """A payment token starting error_ makes the payment gateway fail every time."""
    with pytest.raises(GatewayError, match="gateway"):
        rules.authorize_payment(facts(payment_token="error_timeout"))


@pytest.mark.parametrize(
    ("quantity", "count"), [(None, 1), (1, 1), (3, 3)], ids=["default", "one", "three"]
)
def test_fulfil_issues_one_voucher_per_unit(quantity: int | None, count: int) -> None:
    """Fulfilment issues one voucher per unit of quantity, one when quantity is absent."""
    verdict = rules.fulfill(facts(quantity=quantity))
    assert verdict.decision == "fulfilled"
    assert count == len(verdict.vouchers)
    assert len(set(verdict.vouchers)) == count


def test_voucher_codes_are_stable_and_depend_on_the_order() -> None:
    """The same order always gets the same codes; another order gets others."""
    first = rules.voucher_codes("ord-1", 2)
    assert first == rules.voucher_codes("ord-1", 2)
    assert first[0] == rules.voucher_codes("ord-1", 1)[0]
    assert not set(first) & set(rules.voucher_codes("ord-2", 2))
    assert all(code.startswith("GC-") and len(code) == 17 for code in first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fraud_limit_cents": -1}, "fraud_limit_cents"), ({"max_attempts": 0}, "max_attempts")],
    ids=["negative-limit", "no-attempts"],
)
def test_rules_refuse_nonsense(kwargs: dict[str, int], message: str) -> None:
    """Rules with a negative limit or no attempts are refused, naming the setting."""
    with pytest.raises(ValueError, match=message):
        rules.Rules(**kwargs)  # type: ignore[arg-type]
