"""Signs SNS messages the way SNS does, with a self-signed certificate made here.

The string to sign is built independently of strangler.sidecar.sns, from the AWS
documentation's field lists, so the tests do not check the code against itself.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:orders"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789.pem"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC_ARN}&Token=2336412f37"
)
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def make_certificate(
    *, not_before: datetime | None = None, not_after: datetime | None = None
) -> tuple[rsa.RSAPrivateKey, bytes]:
    """A fresh RSA key and a self-signed PEM certificate for it (valid around now)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


class SnsSigner:
    """Builds signed SNS envelopes (SignatureVersion 1 or 2)."""

    def __init__(self) -> None:
        self.key, self.pem = make_certificate()

    def notification(
        self,
        message: str,
        *,
        subject: str | None = None,
        version: str = "2",
        topic_arn: str = TOPIC_ARN,
        cert_url: str = CERT_URL,
    ) -> dict[str, Any]:
        """A signed Notification carrying ``message``."""
        fields: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": _timestamp(),
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
        if subject is not None:
            fields["Subject"] = subject
        return self.sign(fields, version=version, cert_url=cert_url)

    def confirmation(
        self,
        kind: str = "SubscriptionConfirmation",
        *,
        version: str = "2",
        subscribe_url: str = SUBSCRIBE_URL,
        topic_arn: str = TOPIC_ARN,
    ) -> dict[str, Any]:
        """A signed SubscriptionConfirmation or UnsubscribeConfirmation."""
        fields = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37",
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
            "SubscribeURL": subscribe_url,
            "Timestamp": _timestamp(),
        }
        return self.sign(fields, version=version, cert_url=CERT_URL)

    def sign(self, fields: dict[str, Any], *, version: str, cert_url: str) -> dict[str, Any]:
        """Add SignatureVersion, Signature and SigningCertURL to ``fields``."""
        keys = _NOTIFICATION_KEYS if fields["Type"] == "Notification" else _CONFIRMATION_KEYS
        text = "".join(f"{k}\n{fields[k]}\n" for k in keys if k in fields)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {
            **fields,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": cert_url,
        }


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
