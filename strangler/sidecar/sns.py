"""Verification of Amazon SNS HTTP(S) messages: envelope, trusted URLs, signatures.

No IO here except through the injected certificate fetcher. The string to sign is built
as AWS documents it: ``Name\\nValue\\n`` for each signed field in a fixed order, where a
Notification signs Message, MessageId, Subject (only when present), Timestamp, TopicArn
and Type, and the two confirmation types sign Message, MessageId, SubscribeURL,
Timestamp, Token, TopicArn and Type. SignatureVersion 1 is RSA PKCS#1 v1.5 over SHA1,
version 2 over SHA256. Only the signed fields and the signature fields must be strings;
the others (``MessageAttributes`` is an object, as AWS sends it) are accepted as they come.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from strangler.sidecar.exceptions import (
    SnsMessageInvalid,
    SnsSignatureInvalid,
    SnsTopicNotAllowed,
    UntrustedSnsUrl,
)

__all__ = [
    "NOTIFICATION",
    "SUBSCRIPTION_CONFIRMATION",
    "UNSUBSCRIBE_CONFIRMATION",
    "CertFetcher",
    "Clock",
    "SnsMessage",
    "SnsVerifier",
    "check_signing_cert_url",
    "check_subscribe_url",
]

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

CertFetcher = Callable[[str], bytes]
"""Fetches a signing certificate (PEM bytes) from an already checked URL."""

_SIGNED_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SIGNED_CONFIRMATION = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_REQUIRED = {
    NOTIFICATION: ("Message", "MessageId", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _SIGNED_CONFIRMATION,
    UNSUBSCRIBE_CONFIRMATION: _SIGNED_CONFIRMATION,
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}
# sns.<region>.amazonaws.com or .amazonaws.com.cn, region like us-east-1, us-gov-west-1.
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com(?:\.cn)?")
_CERT_CACHE_SIZE = 32
_STRING_FIELDS = frozenset(
    {
        *_SIGNED_NOTIFICATION,
        *_SIGNED_CONFIRMATION,
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    }
)
Clock = Callable[[], datetime]
"""The current time, timezone-aware (UTC)."""


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """A parsed SNS envelope; ``fields`` holds the signed and signature fields as received."""

    type: str
    topic_arn: str
    message_id: str
    message: str
    signature_version: str
    signature: bytes
    signing_cert_url: str
    fields: Mapping[str, str]

    @property
    def subscribe_url(self) -> str | None:
        """Where a SubscriptionConfirmation is confirmed; None for other types."""
        return self.fields.get("SubscribeURL")

    @classmethod
    def parse(cls, body: bytes | str) -> SnsMessage:
        """Parse an SNS HTTP(S) body; raises SnsMessageInvalid naming the bad field."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SnsMessageInvalid("body", f"not valid JSON ({exc})") from exc
        except RecursionError as exc:
            raise SnsMessageInvalid("body", "is nested too deeply to be an SNS message") from exc
        if not isinstance(data, dict):
            raise SnsMessageInvalid("body", "must be a JSON object")
        fields = _string_fields(data)
        kind = fields.get("Type")
        if kind not in _REQUIRED:
            raise SnsMessageInvalid("Type", f"must be one of {', '.join(_REQUIRED)}, got {kind!r}")
        for name in (*_REQUIRED[kind], "SignatureVersion", "Signature", "SigningCertURL"):
            if name not in fields:
                raise SnsMessageInvalid(name, "is required")
        return cls(
            type=kind,
            topic_arn=fields["TopicArn"],
            message_id=fields["MessageId"],
            message=fields["Message"],
            signature_version=fields["SignatureVersion"],
            signature=_decode_signature(fields["Signature"]),
            signing_cert_url=fields["SigningCertURL"],
            fields=fields,
        )

    def string_to_sign(self) -> bytes:
        """The canonical bytes SNS signed for this message type."""
        names = _SIGNED_NOTIFICATION if self.type == NOTIFICATION else _SIGNED_CONFIRMATION
        parts = [f"{name}\n{self.fields[name]}\n" for name in names if name in self.fields]
        return "".join(parts).encode("utf-8")


def _string_fields(data: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in data.items():
        if value is None or name not in _STRING_FIELDS:
            continue
        if not isinstance(value, str):
            raise SnsMessageInvalid(name, f"must be a string, got {type(value).__name__}")
        fields[name] = value
    return fields


def _decode_signature(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsMessageInvalid("Signature", "is not valid base64") from exc


def check_signing_cert_url(url: str) -> str:
    """Return ``url`` when it is ``https://sns.<region>.amazonaws.com[.cn]/....pem``.

    Raises UntrustedSnsUrl otherwise (other hosts, look-alikes, http, userinfo, ports).
    """
    path = _check_sns_url("SigningCertURL", url)
    if not path.endswith(".pem"):
        raise UntrustedSnsUrl("SigningCertURL", url, "the path must end in .pem")
    return url


def check_subscribe_url(url: str) -> str:
    """Return ``url`` when it is an https URL on an SNS host; raises UntrustedSnsUrl."""
    _check_sns_url("SubscribeURL", url)
    return url


def _check_sns_url(field: str, url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UntrustedSnsUrl(field, url, f"not a URL ({exc})") from exc
    if parts.scheme != "https":
        raise UntrustedSnsUrl(field, url, "the scheme must be https")
    if not _SNS_HOST.fullmatch(parts.netloc):
        raise UntrustedSnsUrl(
            field,
            url,
            "the host must be sns.<region>.amazonaws.com[.cn], with no user info or port",
        )
    if parts.fragment:
        raise UntrustedSnsUrl(field, url, "a fragment is not allowed")
    return parts.path


class SnsVerifier:
    """Checks the topic allow-list, the certificate URL and the signature of a message.

    Certificates are fetched through ``cert_fetcher`` only after the topic and the URL
    are accepted, and cached by URL (at most 32; thread-safe). A certificate must be
    valid at ``clock()`` (the wall clock unless given) each time it is used.
    """

    def __init__(
        self,
        *,
        topic_arns: Collection[str],
        cert_fetcher: CertFetcher,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._topic_arns = frozenset(topic_arns)
        self._fetch = cert_fetcher
        self._clock = clock
        self._certs: OrderedDict[str, _Certificate] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, message: SnsMessage) -> None:
        """Raise SnsTopicNotAllowed, UntrustedSnsUrl or SnsSignatureInvalid; else return."""
        if message.topic_arn not in self._topic_arns:
            raise SnsTopicNotAllowed(message.topic_arn, allow_list_empty=not self._topic_arns)
        algorithm = _HASHES.get(message.signature_version)
        if algorithm is None:
            raise SnsSignatureInvalid(
                f"SignatureVersion must be 1 or 2, got {message.signature_version!r}"
            )
        key = self._public_key(check_signing_cert_url(message.signing_cert_url))
        try:
            key.verify(message.signature, message.string_to_sign(), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SnsSignatureInvalid(
                f"the signature of message {message.message_id!r} does not match"
            ) from None

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cert = self._certs.get(url)
            if cert is not None:
                self._certs.move_to_end(url)
        if cert is None:
            cert = _load_certificate(url, self._fetch(url))
            with self._lock:
                self._certs[url] = cert
                while len(self._certs) > _CERT_CACHE_SIZE:
                    self._certs.popitem(last=False)
        now = self._clock()
        if not cert.not_valid_before <= now <= cert.not_valid_after:
            raise SnsSignatureInvalid(
                f"the certificate at {url} is not valid now (valid "
                f"{cert.not_valid_before.isoformat()} to {cert.not_valid_after.isoformat()})"
            )
        return cert.key


@dataclass(frozen=True, slots=True)
class _Certificate:
    key: rsa.RSAPublicKey
    not_valid_before: datetime
    not_valid_after: datetime


def _load_certificate(url: str, pem: bytes) -> _Certificate:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsSignatureInvalid(f"{url} is not a PEM certificate") from exc
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureInvalid(f"the certificate at {url} does not hold an RSA key")
    return _Certificate(key, cert.not_valid_before_utc, cert.not_valid_after_utc)
