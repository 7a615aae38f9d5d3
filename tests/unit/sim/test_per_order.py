"""The per-order API: claim, release and the three steps; idempotent, with dry runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.sim.api import get_order, post, run_job
from tests.unit.sim.conftest import OrderFactory

KEY = {"Idempotency-Key": "strangler:claim:x"}


def claim(client: FlaskClient, order_id: str, key: str | None = "k") -> tuple[int, dict]:
    headers = {"Idempotency-Key": key} if key else {}
    response = client.post(f"/orders/{order_id}/claim", headers=headers)
    return response.status_code, response.get_json()


def test_claim_moves_the_order_to_instant_mode(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A claim answers 200 with the order now in instant mode and stamped."""
    order_id = make_order()["order_id"]
    status, body = claim(client, order_id)
    assert status == 200
    assert (body["decision"], body["dry_run"], body["replayed"]) == ("claimed", False, False)
    assert body["order"]["processing_mode"] == "instant"
    assert body["order"]["claimed_at"] == body["order"]["updated_at"]


def test_claim_again_with_the_same_key_is_a_replay(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """The same Idempotency-Key again answers 200 (replayed); another key gets 409."""
    order_id = make_order()["order_id"]
    claim(client, order_id, "k-1")
    response = client.post(f"/orders/{order_id}/claim", headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert response.get_json()["replayed"] is True
    assert response.headers["Idempotent-Replayed"] == "true"
    status, body = claim(client, order_id, "k-2")
    assert (status, body["error"]) == (409, "claimed_elsewhere")
    assert (body["order_status"], body["processing_mode"]) == ("pending", "instant")
    assert claim(client, order_id, None)[0] == 409


def test_claim_is_refused_once_a_batch_job_touched_the_order(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """An order any batch step processed belongs to the batch path for good."""
    order_id = make_order()["order_id"]
    run_job(client, "fraud_scan")
    status, body = claim(client, order_id)
    assert (status, body["error"]) == (409, "batch_owned")


def test_claim_is_refused_for_terminal_orders(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A finished order cannot be claimed."""
    order_id = make_order()["order_id"]
    claim(client, order_id, "k")
    for step in ("fraud_scan", "authorize_payment", "fulfill"):
        client.post(f"/orders/{order_id}/{step}")
    client.post(f"/orders/{order_id}/release")
    status, body = claim(client, order_id, "other")
    assert (status, body["error"]) == (409, "terminal")


def test_claim_dry_run_reports_without_claiming(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A dry-run claim says whether a claim would succeed and changes nothing."""
    touched = make_order()["order_id"]
    run_job(client, "fraud_scan")
    free = make_order()["order_id"]
    status, body = post(client, f"/orders/{free}/claim", dry_run=True)
    assert (status, body["decision"], body["reason"]) == (200, "claimed", None)
    assert get_order(client, free)["processing_mode"] == "batch"
    response = client.post(f"/orders/{touched}/claim?dry_run=true")
    assert (response.status_code, response.get_json()["decision"]) == (200, "conflict")
    assert response.get_json()["reason"] == "batch_owned"


def test_concurrent_claims_have_exactly_one_winner(app: Flask, make_order: OrderFactory) -> None:
    """Of 20 threads claiming with different keys, exactly one gets 200."""
    order_id = make_order()["order_id"]

    def attempt(index: int) -> int:
        client = app.test_client()
        headers = {"Idempotency-Key": f"worker-{index}"}
        return client.post(f"/orders/{order_id}/claim", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert sorted(statuses) == [200] + [409] * 19


@pytest.mark.parametrize(
    ("step", "decision", "status_after"),
    [
        ("fraud_scan", "pass", "fraud_checked"),
        ("authorize_payment", "authorized", "authorized"),
        ("fulfill", "fulfilled", "fulfilled"),
    ],
    ids=["fraud", "payment", "fulfil"],
)
def test_steps_run_in_order_on_a_claimed_order(
    client: FlaskClient,
    make_order: OrderFactory,
    step: str,
    decision: str,
    status_after: str,
) -> None:
    """Each step, on a claimed order in its status, decides and moves the order on."""
    order_id = make_order()["order_id"]
    claim(client, order_id)
    steps = ["fraud_scan", "authorize_payment", "fulfill"]
    for earlier in steps[: steps.index(step)]:
        assert client.post(f"/orders/{order_id}/{earlier}").status_code == 200
    status, body = post(client, f"/orders/{order_id}/{step}")
    assert status == 200
    assert (body["step"], body["decision"], body["order_status"]) == (step, decision, status_after)
    assert (body["dry_run"], body["replayed"]) == (False, False)
    history = get_order(client, order_id)["history"]
    assert history[-1]["actor"] == "api"
    assert history[-1]["decision"] == decision


def test_fulfil_answers_with_the_vouchers(client: FlaskClient, make_order: OrderFactory) -> None:
    """The fulfil step returns the voucher codes it issued, as the order shows them."""
    order_id = make_order(quantity=3)["order_id"]
    claim(client, order_id)
    client.post(f"/orders/{order_id}/fraud_scan")
    client.post(f"/orders/{order_id}/authorize_payment")
    body = client.post(f"/orders/{order_id}/fulfill").get_json()
    assert len(body["details"]["vouchers"]) == 3
    assert body["details"]["vouchers"] == get_order(client, order_id)["vouchers"]


def test_a_repeated_step_returns_its_first_result(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Repeating a step (even after the order moved on) returns the first answer again."""
    order_id = make_order()["order_id"]
    claim(client, order_id)
    first = client.post(f"/orders/{order_id}/fraud_scan").get_json()
    client.post(f"/orders/{order_id}/authorize_payment")
    again = client.post(f"/orders/{order_id}/fraud_scan")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == {**first, "replayed": True}
    assert len(get_order(client, order_id)["history"]) == 2


@pytest.mark.parametrize(
    ("claimed", "step", "code"),
    [
        (False, "fraud_scan", "not_claimed"),
        (True, "authorize_payment", "wrong_status"),
        (True, "fulfill", "wrong_status"),
    ],
    ids=["unclaimed", "payment-too-early", "fulfil-too-early"],
)
def test_steps_refuse_orders_not_ready_for_them(
    client: FlaskClient, make_order: OrderFactory, claimed: bool, step: str, code: str
) -> None:
    """A step on an unclaimed order, or one in another status, answers 409 and writes nothing."""
    order_id = make_order()["order_id"]
    if claimed:
        claim(client, order_id)
    before = get_order(client, order_id)
    status, body = post(client, f"/orders/{order_id}/{step}")
    assert (status, body["error"], body["order_id"]) == (409, code, order_id)
    assert before == get_order(client, order_id)


def test_business_verdicts_are_200_answers(client: FlaskClient, make_order: OrderFactory) -> None:
    """A fraud reject is a 200 with decision reject; the order becomes rejected_fraud."""
    order_id = make_order(payment_token="fraud_stolen")["order_id"]
    claim(client, order_id)
    status, body = post(client, f"/orders/{order_id}/fraud_scan")
    assert (status, body["decision"], body["order_status"]) == (200, "reject", "rejected_fraud")
    assert body["details"] == {"reason": "fraud_token"}
    assert get_order(client, order_id)["terminal_at"] is not None


def test_a_gateway_error_is_a_502_and_counts_an_attempt(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """A payment gateway error answers 502; the order stays and records the failed attempt."""
    order_id = make_order(payment_token="error_gateway")["order_id"]
    claim(client, order_id)
    client.post(f"/orders/{order_id}/fraud_scan")
    status, body = post(client, f"/orders/{order_id}/authorize_payment")
    assert (status, body["error"]) == (502, "payment_gateway_error")
    order = get_order(client, order_id)
    assert (order["status"], order["attempts"]) == ("fraud_checked", 1)
    assert order["history"][-1]["error"] is not None


@pytest.mark.parametrize(
    ("step", "token", "decision", "details"),
    [
        ("fraud_scan", "fraud_x", "reject", {"reason": "fraud_token"}),
        ("authorize_payment", "decline_x", "declined", {"reason": "card_declined"}),
        ("fulfill", "tok", "fulfilled", None),
    ],
    ids=["fraud", "payment", "fulfil"],
)
def test_dry_run_steps_decide_without_writing(
    client: FlaskClient,
    make_order: OrderFactory,
    step: str,
    token: str,
    decision: str,
    details: dict | None,
) -> None:
    """A dry run needs no claim nor status, returns the decision, and writes nothing."""
    order_id = make_order(payment_token=token)["order_id"]
    before = get_order(client, order_id)
    status, body = post(client, f"/orders/{order_id}/{step}", dry_run=True)
    assert (status, body["decision"], body["dry_run"], body["order_status"]) == (
        200,
        decision,
        True,
        "pending",
    )
    if details is not None:
        assert body["details"] == details
    else:
        assert len(body["details"]["vouchers"]) == 1
    assert before == get_order(client, order_id)


def test_dry_run_in_the_body_and_query_must_agree(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """dry_run given twice with different values answers 400 naming dry_run."""
    order_id = make_order()["order_id"]
    response = client.post(f"/orders/{order_id}/fraud_scan?dry_run=false", json={"dry_run": True})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["dry_run"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("fraud_scan", {"dry_run": "yes"}, "dry_run"),
        ("fraud_scan?dry_run=maybe", None, "dry_run"),
        ("release", {"reason": 5}, "reason"),
        ("release", {"reason": "x" * 501}, "reason"),
    ],
    ids=["dry-run-string", "dry-run-query", "reason-number", "reason-long"],
)
def test_bad_per_order_input_is_named(
    client: FlaskClient, make_order: OrderFactory, path: str, body: dict | None, field: str
) -> None:
    """Bad per-order input answers 400 naming the field."""
    order_id = make_order()["order_id"]
    response = client.post(f"/orders/{order_id}/{path}", json=body)
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [field]


def test_bad_idempotency_key_is_named(client: FlaskClient, make_order: OrderFactory) -> None:
    """An over-long Idempotency-Key answers 400 naming the header."""
    order_id = make_order()["order_id"]
    response = client.post(f"/orders/{order_id}/claim", headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["Idempotency-Key"]


@pytest.mark.parametrize(
    "action", ["claim", "release", "fraud_scan", "authorize_payment", "fulfill"]
)
def test_per_order_calls_on_unknown_orders_are_404(client: FlaskClient, action: str) -> None:
    """Every per-order call on an unknown order answers 404."""
    response = client.post(f"/orders/ord-nope/{action}")
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


def test_release_is_idempotent_and_keeps_the_reason(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Release answers the order in batch mode; releasing again changes nothing."""
    order_id = make_order()["order_id"]
    claim(client, order_id)
    status, first = post(client, f"/orders/{order_id}/release", reason="fell back: timeout")
    assert status == 200
    assert (first["processing_mode"], first["release_reason"]) == ("batch", "fell back: timeout")
    assert first["released_at"] == first["updated_at"]
    status, again = post(client, f"/orders/{order_id}/release", reason="again")
    assert (status, again) == (200, first)


def test_a_released_untouched_order_can_be_claimed_again(
    client: FlaskClient, make_order: OrderFactory
) -> None:
    """Until a batch job touches it, a released order can be claimed again (any key)."""
    order_id = make_order()["order_id"]
    claim(client, order_id, "a")
    client.post(f"/orders/{order_id}/release")
    assert claim(client, order_id, "b")[0] == 200
