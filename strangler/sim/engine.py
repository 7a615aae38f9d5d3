"""The order book: creating orders, claim and release, and the three steps.

Both the batch jobs (actor ``batch``) and the per-order API (actor ``api``) go through
:meth:`OrderBook.api_step` / :meth:`OrderBook.batch_step`, each one transaction, so an
order is never processed by both: a claim is refused once any batch step touched the
order, and a batch job skips an order that is claimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import structlog

from strangler.sim import rules
from strangler.sim.divergence import diverge, diverges
from strangler.sim.exceptions import ApiError, GatewayError
from strangler.sim.model import STEPS, SimOrder, Step
from strangler.sim.store import SimStore, Writer

__all__ = ["BatchResult", "ClaimAnswer", "NewOrder", "OrderBook", "StepAnswer"]

_log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class NewOrder:
    """Validated fields of ``POST /orders``."""

    order_id: str | None
    user_guid: str
    unit_id: str
    city: str | None = None
    amount_cents: int | None = None
    currency: str | None = None
    quantity: int | None = None
    payment_token: str | None = None

    def __repr__(self) -> str:
        return f"NewOrder(order_id={self.order_id!r}, user_guid={self.user_guid!r})"


@dataclass(frozen=True, slots=True)
class ClaimAnswer:
    """A ClaimResult: ``decision`` is ``claimed`` or (dry runs only) ``conflict``."""

    order: SimOrder
    decision: str
    reason: str | None
    dry_run: bool
    replayed: bool

    def to_json(self) -> dict[str, Any]:
        """The ClaimResult object of docs/legacy-api.yaml."""
        return {
            "order_id": self.order.order_id,
            "decision": self.decision,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "order": self.order.to_json(),
        }


@dataclass(frozen=True, slots=True)
class StepAnswer:
    """A StepResult object (already JSON-shaped, as stored for replays)."""

    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch job did to one order: ``processed``, ``skipped``, ``error`` or ``failed``."""

    outcome: str
    decision: str | None = None


class OrderBook:
    """All state changes of orders; each public method is one transaction."""

    def __init__(self, store: SimStore, business_rules: rules.Rules) -> None:
        self.store = store
        self.rules = business_rules

    def create(self, new: NewOrder, idempotency_key: str | None) -> tuple[SimOrder, bool]:
        """Create the order; (order, True) when new, (existing order, False) otherwise."""
        with self.store.write() as tx:
            order_id = new.order_id
            if order_id is None and idempotency_key is not None:
                order_id = tx.order_for_key(idempotency_key)
            existing = tx.get(order_id) if order_id is not None else None
            if existing is not None:
                return existing, False
            now = tx.stamp()
            order = SimOrder(
                order_id=order_id or f"ord-{uuid.uuid4().hex}",
                user_guid=new.user_guid,
                unit_id=new.unit_id,
                city=new.city,
                amount_cents=new.amount_cents,
                currency=new.currency,
                quantity=new.quantity,
                payment_token=new.payment_token,
                status="pending",
                processing_mode="batch",
                created_at=now,
                updated_at=now,
            )
            tx.insert(order)
            if idempotency_key is not None:
                tx.remember_key(idempotency_key, order.order_id)
        _log.info("order_created", order_id=order.order_id, user_guid=order.user_guid)
        return order, True

    def get(self, order_id: str) -> SimOrder:
        """The order; raises a 404 ApiError."""
        order = self.store.get(order_id)
        if order is None:
            raise _not_found(order_id)
        return order

    def claim(self, order_id: str, key: str | None, *, dry_run: bool) -> ClaimAnswer:
        """Move the order to ``instant`` mode; raises a 409 ApiError when it is not free."""
        if dry_run:
            order = self.get(order_id)
            replayed, reason = _claim_check(order, key)
            decision = "conflict" if reason else "claimed"
            return ClaimAnswer(order, decision, reason, dry_run=True, replayed=replayed)
        with self.store.write() as tx:
            order = _must_get(tx, order_id)
            replayed, reason = _claim_check(order, key)
            if reason is None and not replayed:
                now = tx.stamp()
                order = order.replace(
                    processing_mode="instant", claim_key=key, claimed_at=now, updated_at=now
                )
                tx.save(order)
        if reason is not None:
            raise _conflict(order, reason, f"order {order_id!r} cannot be claimed: {reason}")
        if not replayed:
            _log.info("order_claimed", order_id=order_id)
        return ClaimAnswer(order, "claimed", None, dry_run=False, replayed=replayed)

    def release(self, order_id: str, reason: str) -> SimOrder:
        """Give the order back to the batch jobs at its current status (idempotent)."""
        with self.store.write() as tx:
            order = _must_get(tx, order_id)
            if order.processing_mode == "batch":
                return order
            now = tx.stamp()
            order = order.replace(
                processing_mode="batch",
                claim_key=None,
                released_at=now,
                release_reason=reason,
                updated_at=now,
            )
            tx.save(order)
        _log.info("order_released", order_id=order_id, reason=reason)
        return order

    def api_step(self, order_id: str, step_name: str, *, dry_run: bool) -> StepAnswer:
        """Run a step for the per-order API. A repeat returns the first result.

        Raises ApiError: 404, 409 (not claimed, wrong status), 502 (gateway error).
        """
        step = STEPS[step_name]
        if dry_run:
            order = self.get(order_id)
            verdict = self._verdict_or_502(order, step)
            return StepAnswer(_step_body(order, step, verdict, order.status, dry_run=True))
        failure: ApiError | None = None
        with self.store.write() as tx:
            order = _must_get(tx, order_id)
            first = order.step_results.get(step_name)
            if first is not None:
                return StepAnswer({**first, "replayed": True})
            _check_ready(order, step)
            try:
                verdict = self._api_verdict(order, step)
            except GatewayError as exc:
                tx.save(_failed_attempt(order, step, "api", str(exc), tx.stamp(), giving_up=False))
                failure = _gateway_error(order, exc)
            else:
                order = _apply(order, step, verdict, "api", tx.stamp())
                body = _step_body(order, step, verdict, order.status, dry_run=False)
                order = order.replace(
                    step_results=MappingProxyType({**order.step_results, step_name: body})
                )
                tx.save(order)
        if failure is not None:
            raise failure
        _log.info("order_step", order_id=order_id, step=step_name, actor="api")
        return StepAnswer(body)

    def batch_step(self, order_id: str, step_name: str) -> BatchResult:
        """Run a step for a batch job, if the order is still in batch mode and in its status."""
        step = STEPS[step_name]
        with self.store.write() as tx:
            order = tx.get(order_id)
            if (
                order is None
                or order.processing_mode != "batch"
                or order.status != step.from_status
            ):
                return BatchResult("skipped")
            try:
                verdict = self._verdict(order, step)
            except GatewayError as exc:
                giving_up = order.attempts + 1 >= self.rules.max_attempts
                tx.save(_failed_attempt(order, step, "batch", str(exc), tx.stamp(), giving_up))
                return BatchResult("failed" if giving_up else "error")
            tx.save(_apply(order, step, verdict, "batch", tx.stamp()))
        return BatchResult("processed", verdict.decision)

    def _verdict(self, order: SimOrder, step: Step) -> rules.Verdict:
        facts = order.facts()
        if step.name == "fraud_scan":
            return rules.fraud_scan(facts, self.rules)
        if step.name == "authorize_payment":
            return rules.authorize_payment(facts)
        return rules.fulfill(facts)

    def _api_verdict(self, order: SimOrder, step: Step) -> rules.Verdict:
        """The per-order API's verdict: the rules', unless the order diverges at this step."""
        verdict = self._verdict(order, step)
        share = self.rules.api_divergence.get(step.name, 0.0)
        if diverges(order.order_id, step.name, share):
            return diverge(step.name, verdict)
        return verdict

    def _verdict_or_502(self, order: SimOrder, step: Step) -> rules.Verdict:
        try:
            return self._api_verdict(order, step)
        except GatewayError as exc:
            raise _gateway_error(order, exc) from exc


def _claim_check(order: SimOrder, key: str | None) -> tuple[bool, str | None]:
    """(replayed, conflict reason or None) for a claim with ``key``."""
    if order.processing_mode == "instant":
        if key is not None and key == order.claim_key:
            return True, None
        return False, "claimed_elsewhere"
    if order.is_terminal:
        return False, "terminal"
    if order.batch_touched:
        return False, "batch_owned"
    return False, None


def _check_ready(order: SimOrder, step: Step) -> None:
    if order.processing_mode != "instant":
        raise _conflict(
            order,
            "not_claimed",
            f"order {order.order_id!r} is not claimed; POST /orders/<id>/claim first",
        )
    if order.status != step.from_status:
        raise _conflict(
            order,
            "wrong_status",
            f"{step.name} needs an order in status {step.from_status!r}; "
            f"order {order.order_id!r} is {order.status!r}",
        )


def _apply(order: SimOrder, step: Step, verdict: rules.Verdict, actor: str, now: str) -> SimOrder:
    passed = verdict.decision in ("pass", "authorized", "fulfilled")
    status = step.pass_status if passed else step.stop_status
    assert status is not None
    changes: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "attempts": 0,
        "last_error": None,
        "batch_touched": order.batch_touched or actor == "batch",
        "history": (*order.history, _record(step, actor, verdict.decision, verdict.reason, now)),
    }
    if passed:
        changes[step.stamp_field] = now
    if status in ("fulfilled", "rejected_fraud", "payment_declined"):
        changes["terminal_at"] = now
    if verdict.vouchers:
        changes["vouchers"] = verdict.vouchers
    return order.replace(**changes)


def _failed_attempt(
    order: SimOrder, step: Step, actor: str, error: str, now: str, giving_up: bool
) -> SimOrder:
    changes: dict[str, Any] = {
        "updated_at": now,
        "attempts": order.attempts + 1,
        "last_error": error,
        "batch_touched": order.batch_touched or actor == "batch",
        "history": (*order.history, _record(step, actor, None, None, now, error)),
    }
    if giving_up:
        changes.update(status="failed", terminal_at=now)
        _log.warning("order_failed", order_id=order.order_id, step=step.name, error=error)
    return order.replace(**changes)


def _record(
    step: Step,
    actor: str,
    decision: str | None,
    reason: str | None,
    now: str,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "step": step.name,
        "actor": actor,
        "decision": decision,
        "reason": reason,
        "at": now,
        "error": error,
    }


def _step_body(
    order: SimOrder, step: Step, verdict: rules.Verdict, status: str, *, dry_run: bool
) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "step": step.name,
        "decision": verdict.decision,
        "order_status": status,
        "dry_run": dry_run,
        "replayed": False,
        "details": verdict.details(),
    }


def _must_get(tx: Writer, order_id: str) -> SimOrder:
    order = tx.get(order_id)
    if order is None:
        raise _not_found(order_id)
    return order


def _not_found(order_id: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"no order {order_id!r}; create it with POST /orders",
        extra={"order_id": order_id},
    )


def _conflict(order: SimOrder, code: str, message: str) -> ApiError:
    return ApiError(
        409,
        code,
        message,
        extra={
            "order_id": order.order_id,
            "order_status": order.status,
            "processing_mode": order.processing_mode,
        },
    )


def _gateway_error(order: SimOrder, exc: GatewayError) -> ApiError:
    return ApiError(
        502,
        "payment_gateway_error",
        f"{exc}; the order stays {order.status!r} and can be retried",
        extra={"order_id": order.order_id},
    )
