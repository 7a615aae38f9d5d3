"""Errors raised by strangler.

Every error strangler raises on purpose derives from :class:`StranglerError`. Errors of
the layer below (requests, botocore, SQLAlchemy) are translated at the adapter boundary
with ``raise ... from exc`` so that none leaks to callers::

    StranglerError
     +-- InvalidNotification (also ValueError)   an order notification failed validation
     +-- ConfigurationError (also ValueError)    a setting or config file is wrong
     +-- FlagError
     |    +-- FlagFileError                      the flag file is unreadable or invalid
     |    +-- RolloutError (also ValueError)     a rollout change was refused
     |    |    +-- EvidenceRequired               going live without a passing comparison
     |    +-- UnleashAdminError                  the Unleash Admin API refused or failed
     +-- LegacyError                             (strangler.legacy_adapter.exceptions)
     |    +-- LegacyUnavailable                  retryable: down, timing out, 5xx, breaker open
     |    |    +-- CircuitOpen                   the breaker fails calls fast
     |    +-- LegacyRejected                     4xx, not retryable; carries status and body
     |    |    +-- OrderNotFound                 404: the legacy app has no such order
     |    |    +-- ClaimConflict                 409: the order is not ours to act on
     |    +-- LegacyProtocolError                an answer that breaks the contract
     |    +-- WaitTimeout (also TimeoutError)    an order did not become terminal in time
     +-- SimError                                (strangler.sim.exceptions, simulator inside)
     +-- InstantError                            (strangler.instant.exceptions)
     |    +-- DefinitionError (also ValueError)  an ASL definition is invalid
     |    +-- ExecutionError                     an execution could not be started or read
     |    |    +-- StepFunctionsError            AWS refused or was unreachable
     |    +-- InvalidStepEvent (also ValueError) a pipeline handler got an unusable event
     |    +-- DispatchError                      SNS records that were not order notifications
     +-- LedgerError                             the ledger could not be read or written
     +-- SidecarError                            (strangler.sidecar.exceptions)
     |    +-- ReportUnavailable                  the report process failed, died or overran
     |    +-- ReportsBusy                        too many different reports waiting
     |    +-- SnsError                           an SNS message was refused
     |         +-- SnsMessageInvalid (also ValueError)  not an SNS envelope; names the field
     |         +-- SnsTopicNotAllowed            TopicArn not in STRANGLER_SNS_TOPIC_ARNS
     |         +-- UntrustedSnsUrl               a cert or subscribe URL off the SNS hosts
     |         +-- SnsSignatureInvalid           signature or certificate does not verify
     |         +-- SnsCertificateUnavailable     the signing certificate could not be fetched
     |         +-- SnsConfirmationFailed         SNS refused the subscription confirmation
     +-- AwsError                                (strangler.aws.exceptions)
          +-- BundleError                        the Lambda code bundle could not be built
          +-- DeployError                        a stack could not be created or updated
          +-- RollbackError                      a stack's aliases could not be moved back
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ConfigurationError",
    "EvidenceRequired",
    "FlagError",
    "FlagFileError",
    "InvalidNotification",
    "LedgerError",
    "RolloutError",
    "StranglerError",
    "UnleashAdminError",
]


class StranglerError(Exception):
    """Base of every error strangler raises on purpose."""


class InvalidNotification(StranglerError, ValueError):
    """An order notification failed validation; ``errors`` maps each bad field to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        listed = "; ".join(f"{field}: {why}" for field, why in sorted(self.errors.items()))
        super().__init__(f"invalid order notification: {listed}")

    @property
    def fields(self) -> list[str]:
        """The names of the offending fields, sorted."""
        return sorted(self.errors)


class ConfigurationError(StranglerError, ValueError):
    """A setting is missing or malformed; the message names the setting."""


class FlagError(StranglerError):
    """Base for flag evaluation and rollout control errors."""


class FlagFileError(FlagError):
    """The flag definitions file is unreadable or fails validation."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"flag file {path}: {problem}")


class RolloutError(FlagError, ValueError):
    """A rollout change was refused because its input is wrong; nothing was written."""


class EvidenceRequired(RolloutError):
    """A change would put orders on instant where none were, and the current window has
    no passing comparison verdict; the message says what is missing. Nothing was written.

    Repeat the change with ``no_evidence`` (``--no-evidence``) to go live anyway; the
    audit log and the rollout timeline record that it went live without evidence.
    """


class UnleashAdminError(FlagError):
    """The Unleash Admin API could not be reached or refused a change.

    ``url`` is the request's, ``status`` the HTTP status (None when there was no answer).
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class LedgerError(StranglerError):
    """The ledger could not be read or written.

    ``problem`` says what went wrong; ``operation`` is what the ledger was asked to do
    ("record a step") and ``url`` the ledger's database URL with its password hidden, when
    known (as httpx's errors carry their request). The message joins them:
    ``ledger sqlite:///x.db: could not record a step: OperationalError: disk I/O error``.
    """

    def __init__(
        self, problem: str, *, operation: str | None = None, url: str | None = None
    ) -> None:
        self.problem = problem
        self.operation = operation
        self.url = url
        where = f"ledger {url}: " if url else ""
        doing = f"could not {operation}: " if operation else ""
        super().__init__(f"{where}{doing}{problem}")
