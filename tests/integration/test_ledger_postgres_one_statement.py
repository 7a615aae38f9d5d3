"""PostgreSQL's one-statement pin and finish write exactly the rows of the multi-statement path.

Each scenario runs twice, on two fresh databases with the same manual clock: once as
shipped (the usual pin and finish one statement each) and once with the one-statement
writes turned off (the path SQLite and the unusual cases take). The answers and every
row of orders, transitions and step_results (ids aside, in id order) must be equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from strangler.exceptions import LedgerError
from strangler.ledger import Handoff, LeasedOrder, SqlLedger, ledger_from_url
from strangler.orders import Decision, OrderStatus, Route, StepResult
from tests.helpers import fresh_pg_database
from tests.unit.ledger.support import T0, ManualClock, make_decision, make_order, make_step

pytestmark = pytest.mark.needs_postgres

Scenario = Callable[[SqlLedger, ManualClock], list[Any]]
FIVE_STEPS = ("claim", "fraud_scan", "authorize_payment", "fulfill", "notify")


def _steps(order_id: str, count: int = 4) -> list[tuple[StepResult, int]]:
    return [(make_step(order_id, name, at=T0), 0) for name in FIVE_STEPS[:count]]


def _received_and_claimed(ledger: SqlLedger, order_id: str, owner: str = "w-1") -> None:
    assert ledger.record_received(make_order(order_id), source="test")
    claimed = ledger.claim_due(owner, limit=1, lease_seconds=30)
    assert [order.order_id for order in claimed] == [order_id]


def _pin(ledger: SqlLedger, order_id: str, path: Route = Route.INSTANT, **fields: Any) -> Any:
    decision = make_decision(path, **fields)
    return ledger.pin_decision(order_id, decision, start_running=True).to_dict()


def _finish(
    ledger: SqlLedger, order_id: str, owner: str = "w-1", *, steps: int = 4, **kw: Any
) -> Any:
    status = kw.pop("status", OrderStatus.FULFILLED)
    return ledger.finish(order_id, status, _steps(order_id, steps), at=T0, release_owner=owner)


def usual(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """Claimed, pinned and started, finished; then both again (nothing changes)."""
    _received_and_claimed(ledger, "o-1")
    clock.advance(0.002)
    pinned = _pin(ledger, "o-1")
    clock.advance(0.010)
    finished = _finish(ledger, "o-1")
    clock.advance(1)
    return [pinned, finished, _pin(ledger, "o-1", flag_revision="rev-2"), _finish(ledger, "o-1")]


def already_pinned(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A second decision finds the first pinned: the first comes back, nothing moves."""
    _received_and_claimed(ledger, "o-1")
    first = ledger.pin_decision("o-1", make_decision(Route.INSTANT)).to_dict()
    clock.advance(0.5)
    return [first, _pin(ledger, "o-1", variant="other", reason="second")]


def routed_without_a_path(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """An order already moved to routed (no path) is pinned and started one move at a time."""
    _received_and_claimed(ledger, "o-1")
    moved = ledger.transition("o-1", OrderStatus.ROUTED, reason="by hand")
    clock.advance(0.5)
    return [moved, _pin(ledger, "o-1")]


def followed_path_the_legacy_app_ended(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A shadow order the legacy app already ended ends with it when pinned."""
    _received_and_claimed(ledger, "o-1")
    ended = ledger.record_legacy_progress(
        "o-1", [], legacy_status="fulfilled", legacy_terminal_at=T0 + timedelta(seconds=3)
    )
    clock.advance(0.5)
    return [ended, _pin(ledger, "o-1", Route.SHADOW)]


def handed_off_before_routing(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """An order the batch jobs own already keeps its hand-off, and ends as they ended it."""
    _received_and_claimed(ledger, "o-1")
    handed = ledger.hand_off("o-1", Handoff.LEGACY_OWNED, reason="legacy had it first")
    ledger.record_legacy_progress("o-1", [], legacy_status="payment_declined")
    clock.advance(0.5)
    return [handed, _pin(ledger, "o-1")]


def received_with_a_handoff(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A received order carrying a hand-off (no method writes one; a row written so by
    hand or by another version) is followed: it ends as the legacy app ended it."""
    _received_and_claimed(ledger, "o-1")
    ledger.record_legacy_progress("o-1", [], legacy_status="fulfilled")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET handoff = 'legacy_owned'"))
    clock.advance(0.5)
    return [_pin(ledger, "o-1")]


def lease_no_longer_held(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A worker that lost the lease still records its steps and ends the order; the new
    holder's lease stays; the new holder's finish then changes nothing."""
    _received_and_claimed(ledger, "o-1")
    pinned = _pin(ledger, "o-1")
    assert ledger.release_lease("o-1", "w-1", done=False)
    clock.advance(0.1)
    assert [order.order_id for order in ledger.claim_due("w-2", limit=1, lease_seconds=30)] == [
        "o-1"
    ]
    late = _finish(ledger, "o-1", "w-1", steps=5, status=OrderStatus.FAILED)
    clock.advance(0.1)
    return [pinned, late, _finish(ledger, "o-1", "w-2", steps=3)]


def no_steps_and_other_outcomes(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A finish without steps, and one at each of two other terminal statuses."""
    answers = []
    for number, status in enumerate(
        (OrderStatus.REJECTED_FRAUD, OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED)
    ):
        order_id = f"o-{number}"
        _received_and_claimed(ledger, order_id)
        answers.append(_pin(ledger, order_id))
        clock.advance(0.01)
        answers.append(_finish(ledger, order_id, steps=number, status=status))
    return answers


def more_steps_than_one_statement_takes(ledger: SqlLedger, clock: ManualClock) -> list[Any]:
    """A finish with more step results than the one statement takes writes them all."""
    _received_and_claimed(ledger, "o-1")
    pinned = _pin(ledger, "o-1")
    clock.advance(0.01)
    steps = [(make_step("o-1", "fraud_scan", at=T0), seq) for seq in range(40)]
    finished = ledger.finish("o-1", OrderStatus.FAILED, steps, at=T0, release_owner="w-1")
    return [pinned, finished]


def unknown_order(ledger: SqlLedger, _clock: ManualClock) -> list[Any]:
    """Pinning or finishing an order the ledger does not know raises LedgerError."""
    _received_and_claimed(ledger, "o-1")
    answers = []
    for write in (
        lambda: _pin(ledger, "nope"),
        lambda: _finish(ledger, "nope"),
        lambda: _finish(ledger, "nope", steps=0),
    ):
        with pytest.raises(LedgerError) as caught:
            write()
        answers.append(caught.value.operation)
    return answers


SCENARIOS = [
    usual,
    already_pinned,
    routed_without_a_path,
    followed_path_the_legacy_app_ended,
    handed_off_before_routing,
    received_with_a_handoff,
    lease_no_longer_held,
    no_steps_and_other_outcomes,
    more_steps_than_one_statement_takes,
    unknown_order,
]


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    with fresh_pg_database("strangler_one") as one, fresh_pg_database("strangler_many") as many:
        yield (
            one.render_as_string(hide_password=False),
            many.render_as_string(hide_password=False),
        )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_the_one_statement_writes_leave_the_rows_of_the_multi_statement_path(
    scenario: Scenario, two_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same answers, same orders, transitions and step results, in every branch."""
    outcomes = []
    for url, one_statement in zip(two_databases, (True, False), strict=True):
        clock = ManualClock(T0)
        ledger = ledger_from_url(url, clock=clock)
        try:
            assert ledger._one_statement
            if not one_statement:
                monkeypatch.setattr(ledger, "_one_statement", False)
            outcomes.append((scenario(ledger, clock), _rows(ledger)))
        finally:
            ledger.close()
    assert outcomes[0][1]["orders"], "the scenario wrote no order"
    assert outcomes[1] == outcomes[0]


def _rows(ledger: SqlLedger) -> dict[str, list[dict[str, Any]]]:
    """Every row the pin and the finish write, ids left out, in the order they were made."""
    tables = {"orders": "order_id", "transitions": "id", "step_results": "id"}
    dump = {}
    with ledger.engine.connect() as conn:
        for table, order in tables.items():
            rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))  # noqa: S608
            dump[table] = [{k: v for k, v in row.items() if k != "id"} for row in rows.mappings()]
    return dump


def test_the_postgres_claim_leaves_the_decision_to_the_worker() -> None:
    """On PostgreSQL the claim commits unflushed, so it pins nothing: ``decide`` is not
    asked, the order comes back undecided and the worker's one-statement pin follows."""
    asked: list[str] = []

    def decide(order: LeasedOrder) -> Decision:
        asked.append(order.order_id)
        return make_decision(Route.INSTANT)

    with fresh_pg_database("strangler_claim") as url:
        ledger = ledger_from_url(url.render_as_string(hide_password=False))
        try:
            ledger.record_received(make_order("o-1"), source="test")
            [order] = ledger.claim_due("w-1", limit=1, lease_seconds=30, decide=decide)
            pinned = ledger.pin_decision("o-1", make_decision(Route.INSTANT), start_running=True)
            story = ledger.story("o-1")
        finally:
            ledger.close()
    assert (asked, order.decision, order.pinned_now) == ([], None, False)
    assert (pinned, story and story["status"]) == (make_decision(Route.INSTANT), "running")
