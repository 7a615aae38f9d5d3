"""The pipeline's Task handlers, with the Lambda signature ``(event, context)``.

Each step calls the legacy app's per-order API through the adapter: the strangler layer
around the old batch system. The event is the Task's ``Parameters``: ``order_id``,
``dry_run`` and, for ``release``, the ``error`` and ``cause`` the pipeline caught.

- Every handler honours ``dry_run``: nothing is written, the decision the step would
  take is returned.
- Every handler is idempotent, because the legacy per-order API is: a retried call
  returns the first result.
- Errors keep their class names, which is what the definition's Retry and Catch match
  on (Lambda reports a Python exception's class name as its ``errorType``):
  ``LegacyUnavailable`` and ``CircuitOpen`` (the adapter's breaker failing fast) are
  retried; everything else is caught and the order released.

:func:`make_handlers` builds the handlers around an injected client (the local backend
uses it); the module-level functions (``claim``, ``fraud_scan``, ...) are the Lambda
entry points and build their client from ``STRANGLER_*`` variables on first use.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import structlog

from strangler.instant.exceptions import InvalidStepEvent
from strangler.instant.steps import parse_cause
from strangler.legacy_adapter import LegacyClient, StepOutcome
from strangler.logs import configure_logging
from strangler.settings import Settings

__all__ = [
    "Handler",
    "LegacySteps",
    "authorize_payment",
    "claim",
    "fraud_scan",
    "fulfill",
    "make_handlers",
    "release",
]

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

MAX_REASON_CHARS = 500

log = structlog.get_logger()


class LegacySteps(Protocol):
    """The part of the legacy adapter the handlers use (``LegacyClient`` satisfies it)."""

    def claim(self, order_id: str) -> bool: ...

    def release(self, order_id: str, reason: str) -> Any: ...

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome: ...


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A Task's input, validated: which order, and whether this is a dry run."""

    order_id: str
    dry_run: bool

    @classmethod
    def parse(cls, step: str, event: Any) -> StepEvent:
        """Validate a handler event; raises InvalidStepEvent naming the bad field."""
        if type(event) is not dict and not isinstance(event, Mapping):
            raise InvalidStepEvent(step, "event", f"must be a JSON object, got {event!r:.80}")
        order_id = event.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidStepEvent(
                step, "order_id", f"must be a non-empty string, got {order_id!r}"
            )
        dry_run = event.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise InvalidStepEvent(step, "dry_run", f"must be true or false, got {dry_run!r}")
        return cls(order_id=order_id, dry_run=dry_run)


class _Steps:
    """The five handlers around one legacy client."""

    def __init__(self, legacy: LegacySteps) -> None:
        self._legacy = legacy

    def claim(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Take the order from the batch jobs; ``claimed`` false means they keep it.

        A retried claim is answered True again (the adapter's idempotency key is stable
        per order). A dry run asks nothing and reports the claim as made: a shadow run
        goes on to compare every step while the batch jobs own and process the order.
        """
        step = StepEvent.parse("claim", event)
        claimed = True if step.dry_run else self._legacy.claim(step.order_id)
        decision = "claimed" if claimed else "legacy_owned"
        _log_step_done(step, "claim", context, decision)
        return {"step": "claim", "decision": decision, "claimed": claimed, "dry_run": step.dry_run}

    def fraud_scan(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Run the legacy fraud scan on this order: decision ``pass`` or ``reject``."""
        step = StepEvent.parse("fraud_scan", event)
        outcome = self._legacy.fraud_scan(step.order_id, dry_run=step.dry_run)
        return _step_output("fraud_scan", step, outcome, context)

    def authorize_payment(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Authorise the order's payment: decision ``authorized`` or ``declined``."""
        step = StepEvent.parse("authorize_payment", event)
        outcome = self._legacy.authorize_payment(step.order_id, dry_run=step.dry_run)
        return _step_output("authorize_payment", step, outcome, context)

    def fulfill(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Fulfil the order: decision ``fulfilled``, voucher codes in ``details``."""
        step = StepEvent.parse("fulfill", event)
        outcome = self._legacy.fulfill(step.order_id, dry_run=step.dry_run)
        return _step_output("fulfill", step, outcome, context)

    def release(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Hand the order back to the batch jobs, recording why; a dry run releases nothing."""
        step = StepEvent.parse("release", event)
        error = str(event.get("error") or "Unknown")
        reason = fallback_reason(error, event.get("cause"))
        if not step.dry_run:
            self._legacy.release(step.order_id, reason)
        fields = _log_fields(step, "release", context)
        log.warning("instant_released_to_legacy", **fields, error=error)
        return {
            "step": "release",
            "decision": "released",
            "released": not step.dry_run,
            "error": error,
            "reason": reason,
            "dry_run": step.dry_run,
        }


def make_handlers(legacy: LegacySteps) -> Mapping[str, Handler]:
    """The pipeline's handlers around ``legacy``, keyed by step name (see definition.STEPS).

    A :class:`LegacyClient` is used with one HTTP attempt per call: the definition's
    Retry owns the retries, so a step reaches the legacy app at most 1 + MaxAttempts
    times per execution instead of that times the adapter's own tries.
    """
    steps = _Steps(legacy.single_attempt() if isinstance(legacy, LegacyClient) else legacy)
    return MappingProxyType(
        {
            "claim": steps.claim,
            "fraud_scan": steps.fraud_scan,
            "authorize_payment": steps.authorize_payment,
            "fulfill": steps.fulfill,
            "release": steps.release,
        }
    )


def fallback_reason(error: str, cause: Any) -> str:
    """A one-line reason for the legacy app's records, from a caught error and its cause.

    Lambda wraps a failure's cause as JSON (``errorMessage``, ``errorType``, ...); only
    the message is kept. The reason is cut to MAX_REASON_CHARS.
    """
    message = parse_cause(cause)
    reason = f"instant pipeline fell back: {error}" + (f": {message}" if message else "")
    return reason[:MAX_REASON_CHARS]


def _step_output(name: str, step: StepEvent, outcome: StepOutcome, context: Any) -> dict[str, Any]:
    _log_step_done(step, name, context, outcome.decision)
    return {
        "step": name,
        "decision": outcome.decision,
        "dry_run": step.dry_run,
        "order_status": outcome.order_status,
        "replayed": outcome.replayed,
        "details": dict(outcome.details),
    }


def _log_step_done(step: StepEvent, name: str, context: Any, decision: str) -> None:
    """``instant_step_done`` (a debug line): its fields are gathered only when it is
    written, not for every step of every order at the usual INFO level."""
    logger = log.bind()
    enabled = getattr(logger, "is_enabled_for", None)  # structlog's filtering loggers
    if enabled is None or enabled(logging.DEBUG):
        logger.debug("instant_step_done", **_log_fields(step, name, context), decision=decision)


def _log_fields(step: StepEvent, name: str, context: Any) -> dict[str, Any]:
    """The fields of a step's log line (passed with the event: no logger bound per step)."""
    return {
        "order_id": step.order_id,
        "step": name,
        "dry_run": step.dry_run,
        "request_id": getattr(context, "aws_request_id", None),
    }


# Lambda entry points: the client is built once per container, on first use.


@functools.cache
def _lambda_handlers() -> Mapping[str, Handler]:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.logging_level)
    return make_handlers(LegacyClient.from_settings(settings))


def claim(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point of the ``claim`` step."""
    return _lambda_handlers()["claim"](event, context)


def fraud_scan(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point of the ``fraud_scan`` step."""
    return _lambda_handlers()["fraud_scan"](event, context)


def authorize_payment(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point of the ``authorize_payment`` step."""
    return _lambda_handlers()["authorize_payment"](event, context)


def fulfill(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point of the ``fulfill`` step."""
    return _lambda_handlers()["fulfill"](event, context)


def release(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point of the ``release`` step."""
    return _lambda_handlers()["release"](event, context)
