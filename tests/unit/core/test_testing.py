"""strangler.testing: the public fakes behave as the seams they stand in for promise."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from strangler.legacy_adapter.exceptions import LegacyUnavailable, OrderNotFound
from strangler.orders import OrderNotification, Route
from strangler.protocols import FlagSource, InstantBackend, LegacyPath
from strangler.testing import (
    FakeFlags,
    FakeInstant,
    FakeLegacy,
    ManualClock,
    execution_result,
    legacy_order,
)

ORDER = OrderNotification.from_dict({"order_id": "o-1", "user_guid": "u-1", "unit_id": "n"})
NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_fake_flags_route_down_the_set_path_and_count() -> None:
    """FakeFlags decides the path it was given, counts calls, and raises a set error."""
    flags: FlagSource = FakeFlags(Route.SHADOW, rollout=30)
    decision = flags.decide(ORDER)
    assert (decision.path, decision.variant, decision.rollout) == (Route.SHADOW, "shadow", 30)
    fake = FakeFlags()
    fake.error = RuntimeError("flag store down")
    with pytest.raises(RuntimeError, match="flag store down"):
        fake.decide(ORDER)
    assert (fake.calls, fake.status().loaded) == (1, True)


def test_fake_instant_plays_its_script_then_fulfils() -> None:
    """FakeInstant returns scripted outcomes and raises scripted errors, in order."""
    instant = FakeInstant()
    backend: InstantBackend = instant
    instant.script("o-1", "rejected_fraud", LegacyUnavailable("down"))
    first = backend.run(ORDER, dry_run=True)
    with pytest.raises(LegacyUnavailable):
        backend.run(ORDER)
    last = backend.run(ORDER)
    assert (first.outcome, first.dry_run, last.outcome) == ("rejected_fraud", True, "fulfilled")
    assert instant.runs == {("o-1", True): 1, ("o-1", False): 2}


def test_fake_legacy_keeps_orders_and_answers_polls_in_order() -> None:
    """FakeLegacy serves stored orders, polls from a time inclusively, and 404s the rest."""
    fake = FakeLegacy()
    legacy: LegacyPath = fake
    fake.put(legacy_order("late", updated_at=NOON + timedelta(minutes=5)))
    fake.put(legacy_order("early", "fraud_scan_pending", updated_at=NOON))
    polled = [entry.order_id for entry in legacy.orders_listed_since(NOON)]
    assert (polled, legacy.get_order("early").terminal_at) == (["early", "late"], None)
    assert (fake.orders_updated_since(NOON + timedelta(minutes=1)), fake.built) == (
        [fake.orders["late"]],
        [],
    )
    with pytest.raises(OrderNotFound):
        legacy.get_order("missing")
    assert (legacy.claim("o-9"), fake.claimed) == (True, ["o-9"])


def test_execution_result_has_the_steps_of_its_outcome() -> None:
    """A fulfilled execution carries the four steps of the instant path, in order."""
    result = execution_result("o-1")
    steps = [step.step for step in result.steps]
    assert steps == ["claim", "fraud_scan", "authorize_payment", "fulfill"]


def test_manual_clock_moves_only_when_told() -> None:
    """ManualClock gives the same time until advanced, then the advanced time."""
    clock = ManualClock(NOON)
    assert (clock(), clock.advance(90), clock()) == (
        NOON,
        NOON + timedelta(seconds=90),
        NOON + timedelta(seconds=90),
    )


def test_importing_the_fakes_stays_light() -> None:
    """strangler.testing loads neither requests, SQLAlchemy, boto3 nor the Unleash SDK."""
    probe = (
        "import sys, strangler.testing; print(sorted(m for m in "
        "('requests', 'sqlalchemy', 'boto3', 'UnleashClient', 'flask') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
