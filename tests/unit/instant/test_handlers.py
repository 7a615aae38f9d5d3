"""The pipeline's Task handlers, against a fake legacy adapter."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import structlog
from structlog.testing import capture_logs

from strangler.instant.exceptions import InvalidStepEvent
from strangler.instant.handlers import MAX_REASON_CHARS, fallback_reason, make_handlers
from strangler.legacy_adapter import ClaimConflict, LegacyUnavailable
from tests.unit.instant.fakes import FakeLegacy

EVENT = {"order_id": "o-1", "dry_run": False}


def test_make_handlers_names_every_step() -> None:
    """The factory gives one handler per pipeline step, keyed by the step's name."""
    assert list(make_handlers(FakeLegacy())) == [
        "claim",
        "fraud_scan",
        "authorize_payment",
        "fulfill",
        "release",
    ]


@pytest.mark.parametrize(
    ("claimable", "decision"),
    [(True, "claimed"), (False, "legacy_owned")],
    ids=["ours", "batch-has-it"],
)
def test_claim_reports_who_owns_the_order(claimable: bool, decision: str) -> None:
    """Claim answers ``claimed`` true when the order is ours and false when legacy keeps it."""
    legacy = FakeLegacy(claimable=claimable)
    output = make_handlers(legacy)["claim"](EVENT, None)
    assert {"step": "claim", "decision": decision, "claimed": claimable, "dry_run": False} == output
    assert legacy.calls == [("claim", "o-1", False)]


def test_dry_run_claim_holds_nothing() -> None:
    """A dry-run claim asks the legacy app nothing and reports the claim as made."""
    legacy = FakeLegacy(claimable=False)
    output = make_handlers(legacy)["claim"]({"order_id": "o-1", "dry_run": True}, None)
    assert (output["claimed"], output["decision"], output["dry_run"]) == (True, "claimed", True)
    assert legacy.calls == []


@pytest.mark.parametrize(
    ("step", "decision"),
    [("fraud_scan", "reject"), ("authorize_payment", "declined"), ("fulfill", "fulfilled")],
    ids=["fraud", "payment", "fulfil"],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_step_handlers_return_the_legacy_decision(step: str, decision: str, dry_run: bool) -> None:
    """Each step passes dry_run to the adapter and returns its decision and details."""
    legacy = FakeLegacy(decisions={step: decision})
    output = make_handlers(legacy)[step]({"order_id": "o-7", "dry_run": dry_run}, None)
    assert step == output["step"]
    assert decision == output["decision"]
    assert dry_run == output["dry_run"]
    assert [(step, "o-7", dry_run)] == legacy.calls
    json.dumps(output)  # a Lambda result must be JSON


def test_fulfil_output_carries_the_vouchers() -> None:
    """The fulfilment's voucher codes reach the pipeline output."""
    output = make_handlers(FakeLegacy())["fulfill"](EVENT, None)
    assert output["details"] == {"vouchers": ["V-o-1-1"]}


def test_release_hands_the_order_back_with_the_cause() -> None:
    """Release calls the legacy app with a reason built from the caught error and cause."""
    legacy = FakeLegacy()
    cause = json.dumps({"errorMessage": "legacy app down", "errorType": "LegacyUnavailable"})
    event = {**EVENT, "error": "LegacyUnavailable", "cause": cause}
    output = make_handlers(legacy)["release"](event, None)
    reason = "instant pipeline fell back: LegacyUnavailable: legacy app down"
    assert [("o-1", reason)] == legacy.released
    assert {"decision": "released", "released": True, "reason": reason} == {
        key: output[key] for key in ("decision", "released", "reason")
    }


def test_dry_run_release_releases_nothing() -> None:
    """A dry-run release reports what it would do and writes nothing."""
    legacy = FakeLegacy()
    output = make_handlers(legacy)["release"]({"order_id": "o-1", "dry_run": True}, None)
    assert (output["released"], legacy.released) == (False, [])


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (LegacyUnavailable("legacy app refused the connection"), "fraud_scan"),
        (ClaimConflict("o-1", body={"error": "not_claimed"}), "fulfill"),
    ],
    ids=["unavailable", "conflict"],
)
def test_adapter_errors_keep_their_class_names(error: Exception, step: str) -> None:
    """Adapter errors propagate unchanged, so Retry and Catch can match their names."""
    legacy = FakeLegacy()
    legacy.fail(step, [error])
    with pytest.raises(type(error)) as raised:
        make_handlers(legacy)[step](EVENT, None)
    assert error is raised.value


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "event"),
        ({"dry_run": False}, "order_id"),
        ({"order_id": "", "dry_run": False}, "order_id"),
        ({"order_id": "o-1", "dry_run": "yes"}, "dry_run"),
    ],
    ids=["not-object", "no-order", "empty-order", "dry-run-text"],
)
def test_invalid_events_are_rejected_naming_the_field(event: object, field: str) -> None:
    """A handler refuses an unusable event with InvalidStepEvent naming the field."""
    with pytest.raises(InvalidStepEvent) as raised:
        make_handlers(FakeLegacy())["fraud_scan"](event, None)  # type: ignore[arg-type]
    assert ("fraud_scan", field) == (raised.value.step, raised.value.field)


def test_handlers_log_the_order_and_request_id() -> None:
    """Each step logs its decision at debug level (the ledger and the execution history
    keep every step), with the order id and the Lambda request id."""
    context = SimpleNamespace(aws_request_id="req-1")
    with capture_logs() as logs:
        make_handlers(FakeLegacy())["fraud_scan"](EVENT, context)
    assert [
        (e["event"], e["log_level"], e["order_id"], e["request_id"], e["decision"]) for e in logs
    ] == [("instant_step_done", "debug", "o-1", "req-1", "pass")]


class _CountingContext:
    """A Lambda context that counts reads of its request id."""

    def __init__(self) -> None:
        self.reads = 0

    @property
    def aws_request_id(self) -> str:
        self.reads += 1
        return "req-1"


@pytest.mark.parametrize(("level", "lines"), [(logging.DEBUG, 1), (logging.INFO, 0)])
def test_the_step_line_is_gathered_only_when_debug_is_on(level: int, lines: int) -> None:
    """At INFO (the default) a step writes no debug line and gathers none of its fields."""
    context = _CountingContext()
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        with capture_logs() as logs:
            make_handlers(FakeLegacy())["fraud_scan"](EVENT, context)
    finally:
        structlog.configure(**previous)
    assert (len(logs), context.reads) == (lines, lines)


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (None, "instant pipeline fell back: States.Timeout"),
        ("plain text", "instant pipeline fell back: States.Timeout: plain text"),
        ('{"errorMessage": "boom"}', "instant pipeline fell back: States.Timeout: boom"),
    ],
    ids=["none", "text", "lambda-json"],
)
def test_fallback_reason_is_one_readable_line(cause: str | None, expected: str) -> None:
    """The reason keeps Lambda's error message, not its JSON wrapping."""
    assert expected == fallback_reason("States.Timeout", cause)


def test_fallback_reason_is_bounded() -> None:
    """A huge cause is cut so the legacy app's reason field stays small."""
    assert len(fallback_reason("E", "x" * 5000)) == MAX_REASON_CHARS
