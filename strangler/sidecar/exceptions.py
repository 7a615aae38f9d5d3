"""Errors of the sidecar's SNS and report endpoints (see the tree in strangler.exceptions)."""

from __future__ import annotations

from strangler.exceptions import StranglerError

__all__ = [
    "ReportUnavailable",
    "ReportsBusy",
    "SidecarError",
    "SnsCertificateUnavailable",
    "SnsConfirmationFailed",
    "SnsError",
    "SnsMessageInvalid",
    "SnsSignatureInvalid",
    "SnsTopicNotAllowed",
    "UntrustedSnsUrl",
]


class SidecarError(StranglerError):
    """Base for errors raised by the sidecar."""


class ReportUnavailable(SidecarError):
    """The report process failed, died or overran its time; the next report starts anew."""


class ReportsBusy(SidecarError):
    """Too many different reports are already waiting; ask again in a few seconds."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        super().__init__(
            f"{waiting} different reports are already being computed or waiting; "
            "ask again in a few seconds (the same query shares one computation)"
        )


class SnsError(SidecarError):
    """An SNS message was refused; nothing was taken in."""


class SnsMessageInvalid(SnsError, ValueError):
    """The body is not an SNS message envelope; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"SNS message {field}: {problem}")


class SnsTopicNotAllowed(SnsError):
    """The message's TopicArn is not in STRANGLER_SNS_TOPIC_ARNS."""

    def __init__(self, topic_arn: str, *, allow_list_empty: bool = False) -> None:
        self.topic_arn = topic_arn
        why = (
            "STRANGLER_SNS_TOPIC_ARNS is empty, so every topic is refused"
            if allow_list_empty
            else "it is not in STRANGLER_SNS_TOPIC_ARNS"
        )
        super().__init__(
            f"topic {topic_arn!r} is not allowed ({why}): add it to STRANGLER_SNS_TOPIC_ARNS "
            "(comma-separated) to accept its messages"
        )


class UntrustedSnsUrl(SnsError):
    """A SigningCertURL or SubscribeURL does not point at an SNS host; never fetched."""

    def __init__(self, field: str, url: str, problem: str) -> None:
        self.field = field
        self.url = url
        super().__init__(f"{field} {url!r} is not trusted: {problem}")


class SnsSignatureInvalid(SnsError):
    """The signature does not match the message, or the certificate is unusable."""


class SnsCertificateUnavailable(SnsError):
    """The signing certificate could not be fetched (network, status or size)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"cannot fetch the SNS signing certificate {url}: {problem}")


class SnsConfirmationFailed(SnsError):
    """SNS did not accept the subscription confirmation (network or status)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"confirming the subscription at {url} failed: {problem}")
