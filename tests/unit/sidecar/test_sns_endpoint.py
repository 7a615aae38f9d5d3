"""POST /_strangler/sns: verified messages are acted on, everything else refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.sidecar.fakes import FakeRuntime
from tests.unit.sidecar.sns_signing import CERT_URL, SUBSCRIBE_URL, SnsSigner

URL = "/_strangler/sns"
ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"}


def post(client: FlaskClient, envelope: dict[str, Any], **headers: str) -> Any:
    """POST an envelope as SNS does (text/plain body, message type header)."""
    return client.post(
        URL,
        data=json.dumps(envelope),
        content_type="text/plain; charset=UTF-8",
        headers={"x-amz-sns-message-type": envelope["Type"], **headers},
    )


def test_notification_is_taken_in(
    client: FlaskClient, signer: SnsSigner, runtime: FakeRuntime, fetched: list[str]
) -> None:
    """A verified Notification's Message is taken in as an order (202), source sns."""
    response = post(client, signer.notification(json.dumps(ORDER)))
    assert (response.status_code, response.json["order_id"]) == (202, "o-1")
    assert [(o.order_id, s) for o, s in runtime.router.taken] == [("o-1", "sns")]
    assert fetched == [CERT_URL]


def test_redelivered_notification_is_a_duplicate(client: FlaskClient, signer: SnsSigner) -> None:
    """SNS delivers at least once: the same order again is answered 200."""
    envelope = signer.notification(json.dumps(ORDER))
    post(client, envelope)
    response = post(client, envelope)
    assert (response.status_code, response.json["duplicate"]) == (200, True)


def test_invalid_order_in_a_valid_message_is_kept(
    client: FlaskClient, signer: SnsSigner, runtime: FakeRuntime
) -> None:
    """A signed message whose order is invalid gets 400 naming the field; the body is kept."""
    message = json.dumps({"order_id": "o-1"})
    response = post(client, signer.notification(message))
    assert (response.status_code, set(response.json["fields"])) == (400, {"user_guid", "unit_id"})
    assert [(raw, source) for raw, _, source in runtime.ledger.rejected] == [(message, "sns")]


def test_subscription_is_confirmed(
    client: FlaskClient, signer: SnsSigner, confirmed: list[str]
) -> None:
    """A verified SubscriptionConfirmation is confirmed by fetching its SubscribeURL."""
    response = post(client, signer.confirmation())
    assert (response.status_code, response.json["confirmed"]) == (200, True)
    assert confirmed == [SUBSCRIBE_URL]


def test_unsubscribe_is_logged_only(
    client: FlaskClient, signer: SnsSigner, confirmed: list[str], runtime: FakeRuntime
) -> None:
    """A verified UnsubscribeConfirmation is acknowledged and changes nothing."""
    response = post(client, signer.confirmation("UnsubscribeConfirmation"))
    assert (response.status_code, confirmed, runtime.router.taken) == (200, [], [])


def test_subscribe_url_off_sns_is_not_confirmed(
    client: FlaskClient, signer: SnsSigner, confirmed: list[str]
) -> None:
    """A signed confirmation whose SubscribeURL leaves the SNS hosts is refused, not fetched."""
    response = post(client, signer.confirmation(subscribe_url="https://evil.example/confirm"))
    assert (response.status_code, response.json["error"]) == (400, "invalid_sns_message")
    assert confirmed == []


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"Message": json.dumps({**ORDER, "order_id": "o-2"})}, 403, "invalid_signature"),
        ({"TopicArn": "arn:aws:sns:us-east-1:123456789012:other"}, 403, "topic_not_allowed"),
        ({"SigningCertURL": "https://evil.example/cert.pem"}, 400, "invalid_sns_message"),
        ({"Type": "Bogus"}, 400, "invalid_sns_message"),
    ],
    ids=["tampered", "other-topic", "untrusted-cert-url", "unknown-type"],
)
def test_refused_messages_take_nothing_in(
    client: FlaskClient,
    signer: SnsSigner,
    runtime: FakeRuntime,
    fetched: list[str],
    change: dict[str, str],
    status: int,
    error: str,
) -> None:
    """Tampered, foreign-topic or untrusted messages are refused; nothing is taken in."""
    envelope = {**signer.notification(json.dumps(ORDER)), **change}
    response = post(client, envelope)
    assert (response.status_code, response.json["error"]) == (status, error)
    assert runtime.router.taken == []
    if error != "invalid_signature":
        assert fetched == []


def test_type_header_must_agree_with_the_body(client: FlaskClient, signer: SnsSigner) -> None:
    """The x-amz-sns-message-type header may not contradict the signed Type."""
    envelope = signer.notification(json.dumps(ORDER))
    response = post(client, envelope, **{"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert (response.status_code, response.json["error"]) == (400, "invalid_sns_message")


def test_oversized_message_is_413(client: FlaskClient) -> None:
    """A body over the SNS size limit is refused with 413."""
    response = client.post(URL, data=b"x" * (301 * 1024), content_type="text/plain")
    assert response.status_code == 413
