"""SNS message verification: signatures v1/v2, trusted URLs, topic allow-list, cert cache."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from strangler.sidecar.exceptions import (
    SnsCertificateUnavailable,
    SnsConfirmationFailed,
    SnsMessageInvalid,
    SnsSignatureInvalid,
    SnsTopicNotAllowed,
    UntrustedSnsUrl,
)
from strangler.sidecar.sns import (
    SnsMessage,
    SnsVerifier,
    check_signing_cert_url,
)
from strangler.sidecar.sns_http import HttpCertFetcher, HttpSubscriptionConfirmer
from tests.unit.sidecar.sns_signing import CERT_URL, TOPIC_ARN, SnsSigner, make_certificate

ORDER = json.dumps({"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"})


def verifier(signer: SnsSigner, fetched: list[str] | None = None) -> SnsVerifier:
    """A verifier allowing TOPIC_ARN whose fetcher returns the signer's certificate."""

    def fetch(url: str) -> bytes:
        (fetched if fetched is not None else []).append(url)
        return signer.pem

    return SnsVerifier(topic_arns=[TOPIC_ARN], cert_fetcher=fetch)


def parsed(envelope: dict[str, Any]) -> SnsMessage:
    """Parse an envelope as the endpoint does."""
    return SnsMessage.parse(json.dumps(envelope).encode())


@pytest.mark.parametrize("version", ["1", "2"], ids=["sha1", "sha256"])
@pytest.mark.parametrize("subject", [None, "new order"], ids=["no-subject", "subject"])
def test_signed_notifications_verify(signer: SnsSigner, version: str, subject: str | None) -> None:
    """Notifications signed with SignatureVersion 1 or 2, with or without Subject, verify."""
    message = parsed(signer.notification(ORDER, subject=subject, version=version))
    verifier(signer).verify(message)
    assert (message.type, message.message) == ("Notification", ORDER)


@pytest.mark.parametrize("version", ["1", "2"], ids=["sha1", "sha256"])
@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_signed_confirmations_verify(signer: SnsSigner, version: str, kind: str) -> None:
    """Both confirmation types verify with their own list of signed fields."""
    message = parsed(signer.confirmation(kind, version=version))
    verifier(signer).verify(message)
    assert message.type == kind


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", '{"order_id": "o-666", "user_guid": "u-1", "unit_id": "n-1"}'),
        ("MessageId", "another-id"),
        ("Subject", "changed"),
        ("Timestamp", "2020-01-01T00:00:00.000Z"),
        ("Type", "SubscriptionConfirmation"),
        ("SignatureVersion", "1"),
    ],
    ids=["message", "message-id", "subject", "timestamp", "type", "downgrade"],
)
def test_tampered_notifications_are_rejected(signer: SnsSigner, field: str, value: str) -> None:
    """Changing any signed field, or the signature version, breaks the signature."""
    envelope = signer.notification(ORDER, subject="original")
    envelope[field] = value
    if field == "Type":
        envelope.update(SubscribeURL=CERT_URL, Token="t")
    with pytest.raises(SnsSignatureInvalid):
        verifier(signer).verify(parsed(envelope))


def test_added_subject_is_rejected(signer: SnsSigner) -> None:
    """A Subject added to a message signed without one breaks the signature."""
    envelope = signer.notification(ORDER)
    envelope["Subject"] = "injected"
    with pytest.raises(SnsSignatureInvalid):
        verifier(signer).verify(parsed(envelope))


def test_signature_from_another_key_is_rejected(signer: SnsSigner) -> None:
    """A message signed by a key other than the certificate's is rejected."""
    other = SnsSigner()
    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verifier(signer).verify(parsed(other.notification(ORDER)))


def test_unknown_signature_version_is_rejected(signer: SnsSigner) -> None:
    """Only SignatureVersion 1 and 2 exist."""
    envelope = {**signer.notification(ORDER), "SignatureVersion": "3"}
    with pytest.raises(SnsSignatureInvalid, match="must be 1 or 2"):
        verifier(signer).verify(parsed(envelope))


@pytest.mark.parametrize(
    ("allowed", "hint"),
    [([], "is empty"), (["arn:aws:sns:us-east-1:123456789012:other"], "is not in")],
    ids=["empty-allow-list", "other-topic"],
)
def test_topics_outside_the_allow_list_are_refused_before_any_fetch(
    signer: SnsSigner, allowed: list[str], hint: str
) -> None:
    """A topic not in the allow-list is refused without fetching a certificate."""
    fetched: list[str] = []
    sns = SnsVerifier(topic_arns=allowed, cert_fetcher=lambda url: fetched.append(url) or b"")
    with pytest.raises(SnsTopicNotAllowed, match=hint):
        sns.verify(parsed(signer.notification(ORDER)))
    assert fetched == []


def test_certificates_are_cached_by_url(signer: SnsSigner) -> None:
    """The certificate is fetched once for many messages from the same URL."""
    fetched: list[str] = []
    sns = verifier(signer, fetched)
    for _ in range(3):
        sns.verify(parsed(signer.notification(ORDER)))
    assert fetched == [CERT_URL]


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [(timedelta(days=-10), timedelta(days=-1)), (timedelta(days=1), timedelta(days=10))],
    ids=["expired", "not-yet-valid"],
)
def test_certificates_outside_their_validity_are_refused(
    not_before: timedelta, not_after: timedelta
) -> None:
    """An expired or not yet valid certificate does not verify anything."""
    now = datetime.now(UTC)
    key, pem = make_certificate(not_before=now + not_before, not_after=now + not_after)
    signer = SnsSigner()
    signer.key, signer.pem = key, pem
    with pytest.raises(SnsSignatureInvalid, match="not valid now"):
        verifier(signer).verify(parsed(signer.notification(ORDER)))


def test_non_certificate_is_refused(signer: SnsSigner) -> None:
    """Something that is not a PEM certificate at the URL is refused."""
    sns = SnsVerifier(topic_arns=[TOPIC_ARN], cert_fetcher=lambda _url: b"<html>hello</html>")
    with pytest.raises(SnsSignatureInvalid, match="not a PEM certificate"):
        sns.verify(parsed(signer.notification(ORDER)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"Type": "Other"}', "Type"),
        (b'{"Type": "Notification"}', "Message"),
        (b'{"Type": "Notification", "Message": 5}', "Message"),
    ],
    ids=["not-json", "not-object", "unknown-type", "missing-field", "not-a-string"],
)
def test_malformed_envelopes_name_the_field(body: bytes, field: str) -> None:
    """An envelope that is not an SNS message is refused naming what is wrong."""
    with pytest.raises(SnsMessageInvalid) as caught:
        SnsMessage.parse(body)
    assert caught.value.field == field


def test_signature_must_be_base64(signer: SnsSigner) -> None:
    """A signature that is not base64 is refused while parsing."""
    envelope = {**signer.notification(ORDER), "Signature": "***"}
    with pytest.raises(SnsMessageInvalid, match="Signature"):
        parsed(envelope)


SSRF_URLS = [
    "http://sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
    "https://user@sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    "https://sns-us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.co/cert.pem",
    "https://sqs.us-east-1.amazonaws.com/cert.pem",
    "https://sns.amazonaws.com/cert.pem",
    "https://127.0.0.1/cert.pem",
    "https://169.254.169.254/latest/meta-data.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.example/cert.pem",
    "file:///etc/passwd.pem",
    "https://SNS.us-east-1.amazonaws.com.evil.example/x.pem",
]
SSRF_IDS = [
    "http",
    "suffix",
    "path",
    "userinfo-host",
    "userinfo",
    "port",
    "dash",
    "tld",
    "other-service",
    "no-region",
    "ip",
    "metadata",
    "backslash",
    "file",
    "uppercase-suffix",
]


@responses.activate(assert_all_requests_are_fired=False)
@pytest.mark.parametrize("url", SSRF_URLS, ids=SSRF_IDS)
def test_untrusted_certificate_urls_are_never_fetched(signer: SnsSigner, url: str) -> None:
    """A SigningCertURL off the SNS hosts is refused and no request leaves the process."""
    sns = SnsVerifier(topic_arns=[TOPIC_ARN], cert_fetcher=HttpCertFetcher())
    with pytest.raises(UntrustedSnsUrl, match="SigningCertURL"):
        sns.verify(parsed(signer.notification(ORDER, cert_url=url)))
    assert len(responses.calls) == 0


@responses.activate(assert_all_requests_are_fired=False)
@pytest.mark.parametrize("url", SSRF_URLS, ids=SSRF_IDS)
def test_untrusted_subscribe_urls_are_never_fetched(url: str) -> None:
    """A SubscribeURL off the SNS hosts is refused and no request leaves the process."""
    with pytest.raises(UntrustedSnsUrl, match="SubscribeURL"):
        HttpSubscriptionConfirmer()(url.replace("/cert.pem", "/?Action=ConfirmSubscription"))
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
    ids=["us-east-1", "gov", "china", "ap-southeast-2"],
)
def test_real_sns_certificate_urls_are_trusted(url: str) -> None:
    """SNS certificate URLs of every partition are accepted."""
    assert check_signing_cert_url(url) == url


def test_certificate_url_must_name_a_pem_file() -> None:
    """An SNS host is not enough: the path must end in .pem."""
    with pytest.raises(UntrustedSnsUrl, match=r"\.pem"):
        check_signing_cert_url("https://sns.us-east-1.amazonaws.com/?Action=Anything")


@responses.activate
def test_http_fetcher_downloads_without_following_redirects(signer: SnsSigner) -> None:
    """The default fetcher downloads the PEM and treats a redirect as a failure."""
    responses.get(CERT_URL, body=signer.pem)
    moved = "https://sns.us-east-1.amazonaws.com/moved.pem"
    responses.get(moved, status=302, headers={"Location": "https://evil.example/x.pem"})
    fetcher = HttpCertFetcher()
    assert fetcher(CERT_URL) == signer.pem
    with pytest.raises(SnsCertificateUnavailable, match="HTTP 302"):
        fetcher(moved)
    assert [call.request.url for call in responses.calls] == [CERT_URL, moved]


@responses.activate
def test_http_fetcher_refuses_oversized_certificates() -> None:
    """A certificate over 64 KiB is refused."""
    responses.get(CERT_URL, body=b"x" * (65 * 1024))
    with pytest.raises(SnsCertificateUnavailable, match="larger than"):
        HttpCertFetcher()(CERT_URL)


@responses.activate
def test_http_confirmer_gets_the_subscribe_url() -> None:
    """The default confirmer GETs the SubscribeURL and reports a refusal."""
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    responses.get(url, status=200)
    HttpSubscriptionConfirmer()(url)
    responses.get(url, status=403)
    with pytest.raises(SnsConfirmationFailed, match="HTTP 403"):
        HttpSubscriptionConfirmer()(url)
    assert len(responses.calls) == 2


def test_signature_is_checked_over_exact_bytes(signer: SnsSigner) -> None:
    """The signature covers the message text exactly: a trailing space breaks it."""
    envelope = signer.notification(ORDER)
    envelope["Message"] = ORDER + " "
    with pytest.raises(SnsSignatureInvalid):
        verifier(signer).verify(parsed(envelope))


def test_message_attributes_as_aws_sends_them_are_accepted(signer: SnsSigner) -> None:
    """MessageAttributes is an object, not signed; the message parses and verifies."""
    attributes = {"source": {"Type": "String", "Value": "orders"}}
    envelope = {**signer.notification(ORDER), "MessageAttributes": attributes}
    message = parsed(envelope)
    verifier(signer).verify(message)
    assert message.message == ORDER


@pytest.mark.parametrize("field", ["Message", "MessageId", "TopicArn", "Signature"])
def test_signed_and_envelope_fields_must_still_be_strings(signer: SnsSigner, field: str) -> None:
    """A signed field, or the signature itself, that is not a string is refused naming it."""
    envelope = {**signer.notification(ORDER), field: {"not": "a string"}}
    with pytest.raises(SnsMessageInvalid) as caught:
        parsed(envelope)
    assert caught.value.field == field


def test_a_recorded_message_verifies_at_its_own_time(signer: SnsSigner) -> None:
    """With an injected clock, a message signed by a certificate that has expired verifies."""
    signed_at = datetime.now(UTC) - timedelta(days=30)
    key, pem = make_certificate(
        not_before=signed_at - timedelta(days=1), not_after=signed_at + timedelta(days=1)
    )
    old = SnsSigner()
    old.key, old.pem = key, pem
    envelope = parsed(old.notification(ORDER))
    at_signing = SnsVerifier(
        topic_arns=[TOPIC_ARN], cert_fetcher=lambda _url: pem, clock=lambda: signed_at
    )
    at_signing.verify(envelope)
    today = SnsVerifier(topic_arns=[TOPIC_ARN], cert_fetcher=lambda _url: pem)
    with pytest.raises(SnsSignatureInvalid, match="not valid now"):
        today.verify(envelope)
