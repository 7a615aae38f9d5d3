"""The rollout gate against a real Unleash server: it advances and rolls back there too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.flags import FLAG_NAME
from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import OrderStatus, Route
from strangler.report.verdict import Thresholds
from strangler.rollout.controller import UnleashRolloutController, rollout_controller_from_settings
from strangler.rollout.gate import gate_round
from strangler.rollout.policy import Action, GatePolicy, RollbackTarget
from strangler.settings import Settings
from strangler.testing import FakeLegacy
from tests.helpers import REPO_ROOT
from tests.integration.unleash_fixture import running_unleash
from tests.unit.ledger.support import make_decision, make_order

pytestmark = [pytest.mark.needs_node, pytest.mark.needs_postgres, pytest.mark.slow]

SHIPPED_FLAG_FILE = REPO_ROOT / "flags" / f"{FLAG_NAME}.json"
PLAN = (1, 5, 25, 50, 100)
# Few orders can pass a lenient error-rate check (0/3 has a Wilson upper bound of 56 %);
# no shadow orders here, so comparisons are waived (--no-evidence).
THRESHOLDS = Thresholds(min_orders=3, max_error_rate=0.6, require_shadow=False)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[UnleashRolloutController]:
    """Server-mode rollout control on a fresh Unleash server, the flag pushed from the file."""
    with running_unleash(tmp_path) as unleash:
        settings = Settings(
            unleash_url=unleash.api_url,
            unleash_token=unleash.client_token,
            unleash_admin_token=unleash.admin_token,
            flags_file=SHIPPED_FLAG_FILE,
            data_dir=tmp_path / "data",
        )
        built = rollout_controller_from_settings(settings)
        assert isinstance(built, UnleashRolloutController)
        built.push(SHIPPED_FLAG_FILE)
        yield built


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A SQLite ledger."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def _instant(ledger: SqlLedger, prefix: str, count: int, status: OrderStatus) -> None:
    for n in range(count):
        order_id = f"{prefix}-{n}"
        ledger.record_received(make_order(order_id), source="test")
        ledger.pin_decision(order_id, make_decision(Route.INSTANT))
        ledger.transition(order_id, status)


def test_gate_advances_then_rolls_back_to_shadow_on_unleash(
    controller: UnleashRolloutController, ledger: SqlLedger
) -> None:
    """Passing numbers raise the Unleash flag one step; failing ones move it to shadow only."""
    ledger.record_rollout_event(controller.set_percentage(5, actor="ana", reason="step 5%"))
    _instant(ledger, "good", 3, OrderStatus.FULFILLED)
    policy = GatePolicy(
        PLAN, min_orders=3, rollback_on_fail=True, rollback_to=RollbackTarget.SHADOW
    )

    advanced = gate_round(controller, ledger, policy, THRESHOLDS, actor="gate", legacy=FakeLegacy)
    assert (advanced.decision.action, controller.show().rollout) == (Action.ADVANCE, 25)

    _instant(ledger, "bad", 20, OrderStatus.FAILED)
    rolled = gate_round(controller, ledger, policy, THRESHOLDS, actor="gate", legacy=FakeLegacy)
    state = controller.show()
    assert rolled.decision.action == Action.ROLL_BACK
    assert (state.enabled, state.rollout, state.variants.get("shadow")) == (True, 25, 100)
    assert [e.to_rollout for e in ledger.rollout_events()] == [5, 25, 25]
