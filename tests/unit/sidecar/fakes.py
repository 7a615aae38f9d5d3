"""Hand-written fakes of what the sidecar talks to: runtime, rollout controller, upstream."""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3

from strangler.exceptions import EvidenceRequired, LedgerError, RolloutError
from strangler.ledger.durations import ORDER_BUCKETS_S
from strangler.ledger.ops_queries import OpenLoad, OpsFigures
from strangler.ledger.records import DurationBuckets, LedgerCounts, RolloutEventFields
from strangler.orders import Decision, OrderNotification, Route
from strangler.protocols import FlagStatus
from strangler.rollout.controller import (
    RolloutChange,
    RolloutState,
    TimelineRecorder,
    checked_weights,
    record_on_timeline,
)
from strangler.rollout.stage import Stage, stage_shape

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class FakeIntakeResult:
    new: bool
    order_id: str


@dataclass
class FakeLedger:
    """Keeps rejected bodies, stories, rollout events and values in memory; no orders to
    report on (``report`` raises LedgerError); ``broken`` makes every call fail."""

    rejected: list[tuple[bytes | str, str, str]] = field(default_factory=list)
    stories: dict[str, dict[str, Any]] = field(default_factory=dict)
    recorded_events: list[RolloutEventFields] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    broken: bool = False

    def _check(self) -> None:
        if self.broken:
            raise LedgerError("the ledger is down (fake)")

    def record_rejected(self, raw_body: bytes | str, *, reason: str, source: str) -> None:
        self._check()
        self.rejected.append((raw_body, reason, source))

    def story(self, order_id: str) -> dict[str, Any] | None:
        self._check()
        return self.stories.get(order_id)

    def record_rollout_event(self, event: RolloutEventFields) -> bool:
        self._check()
        self.recorded_events.append(event)
        return True

    def rollout_events(self) -> list[Any]:
        self._check()
        return list(self.recorded_events)

    def report(self, **_window: Any) -> Any:
        self._check()
        raise LedgerError("the fake ledger keeps no orders to report on")

    def duration_histogram(self) -> list[DurationBuckets]:
        self._check()
        return [DurationBuckets("instant", "fulfilled", 3, 4.5, tuple(3 for _ in ORDER_BUCKETS_S))]

    def ops_figures(self) -> OpsFigures:
        self._check()
        return OpsFigures(
            unrouted=OpenLoad(0, None),
            in_flight={},
            gate={},
            heartbeats={},
            compared_steps={},
            compared_since=NOW,
            at=NOW,
        )

    def get_value(self, name: str) -> str | None:
        self._check()
        return self.values.get(name)

    def backlog(self) -> int:
        self._check()
        return 2

    def counts(self) -> LedgerCounts:
        self._check()
        return LedgerCounts(
            total=5,
            backlog=2,
            dispatch_queue=1,
            rejected=len(self.rejected),
            by_path_status={("instant", "fulfilled"): 3, ("legacy", "routed"): 2},
            handoffs={"fallback": 1},
            instant_errors=1,
        )

    def probe(self) -> None:
        self._check()


@dataclass
class FakeRouter:
    """Remembers every order taken in; the second intake of an order_id is a duplicate."""

    ledger: FakeLedger
    taken: list[tuple[OrderNotification, str]] = field(default_factory=list)
    fail_times: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: set[str] = field(default_factory=set)
    gate: threading.Event = field(default_factory=threading.Event)

    def intake(self, order: OrderNotification, *, source: str) -> FakeIntakeResult:
        if order.order_id in self.hold:
            self.arrived.set()
            self.gate.wait(5)
        if self.fail_times:
            self.fail_times -= 1
            raise LedgerError("the ledger is busy (fake)")
        self.ledger._check()
        new = all(seen.order_id != order.order_id for seen, _ in self.taken)
        self.taken.append((order, source))
        self.arrived.set()
        return FakeIntakeResult(new=new, order_id=order.order_id)


@dataclass
class FakeFlags:
    """Sends every order to the instant path at 25%."""

    loaded: bool = True

    def decide(self, order: OrderNotification) -> Decision:
        return Decision(
            path=Route.INSTANT,
            variant="instant",
            rollout=25,
            flag_revision="rev-7",
            reason=f"in rollout ({order.user_guid})",
        )

    def status(self) -> FlagStatus:
        return FlagStatus(
            loaded=self.loaded,
            mode="embedded",
            revision="rev-7",
            loaded_at=NOW if self.loaded else None,
            last_error=None if self.loaded else "flag file missing",
        )


@dataclass
class FakeRuntime:
    ledger: FakeLedger = field(default_factory=FakeLedger)
    flags: FakeFlags = field(default_factory=FakeFlags)
    router: FakeRouter = field(init=False)
    running: bool = False
    stopped_with: float | None = None

    def __post_init__(self) -> None:
        self.router = FakeRouter(self.ledger)

    def start(self) -> None:
        self.running = True

    def stop(self, timeout: float) -> None:
        self.running = False
        self.stopped_with = timeout


@dataclass
class FakeRollout:
    """Keeps the rollout in memory as real RolloutStates; refuses bad input like the real one.

    Its changes go on ``timeline`` by the real controllers' one rule (record_on_timeline).
    """

    state: RolloutState = field(
        default_factory=lambda: RolloutState(
            flag="city_orders_instant_processing",
            mode="embedded",
            source="flags/test.json",
            enabled=True,
            rollout=10,
            variant_weights={"instant": 1000},
            revision="rev-7",
        )
    )
    calls: list[tuple[str, Any, str, str]] = field(default_factory=list)
    #: When set, a set/variants/stage change without no_evidence is refused with it.
    evidence_missing: str | None = None
    timeline: TimelineRecorder | None = None

    def show(self) -> RolloutState:
        return self.state

    def _change(
        self, action: str, arg: Any, actor: str, reason: str, no_evidence: bool = False, **new: Any
    ) -> RolloutChange:
        if self.evidence_missing and action not in {"kill", "enable"} and not no_evidence:
            raise EvidenceRequired(self.evidence_missing)
        self.calls.append((action, arg, actor, reason))
        before, self.state = self.state, dataclasses.replace(self.state, revision="rev-8", **new)
        change = RolloutChange(
            action=action,
            actor=actor,
            reason=reason,
            before=before,
            after=self.state,
            no_evidence=no_evidence,
        )
        return record_on_timeline(self.timeline, change)

    def set_percentage(
        self, pct: int, *, actor: str, reason: str = "", no_evidence: bool = False
    ) -> RolloutChange:
        if not 0 <= pct <= 100:
            raise RolloutError(f"the percentage must be 0-100, got {pct}")
        return self._change("set_percentage", pct, actor, reason, no_evidence, rollout=pct)

    def kill(self, *, actor: str, reason: str = "") -> RolloutChange:
        return self._change("kill", None, actor, reason, enabled=False)

    def enable(self, *, actor: str, reason: str = "") -> RolloutChange:
        return self._change("enable", None, actor, reason, enabled=True)

    def set_variants(
        self,
        weights: Mapping[str, int],
        *,
        actor: str,
        reason: str = "",
        no_evidence: bool = False,
    ) -> RolloutChange:
        per_mille = {name: weight * 10 for name, weight in checked_weights(weights).items()}
        return self._change(
            "set_variants", dict(weights), actor, reason, no_evidence, variant_weights=per_mille
        )

    def set_stage(
        self,
        stage: Stage,
        *,
        actor: str,
        reason: str = "",
        percent: int | None = None,
        shadow_share: int = 10,
        no_evidence: bool = False,
    ) -> RolloutChange:
        try:
            shape = stage_shape(stage, percent=percent, shadow_share=shadow_share)
        except ValueError as exc:
            raise RolloutError(str(exc)) from exc
        per_mille = {name: weight * 10 for name, weight in shape.variants.items()}
        return self._change(
            "set_stage",
            (stage.value, percent, shadow_share),
            actor,
            reason,
            no_evidence,
            rollout=shape.rollout,
            variant_weights=per_mille,
        )


@dataclass
class UpstreamCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    kwargs: dict[str, Any]


@dataclass
class FakeAnswer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: list[tuple[str, str]] = field(
        default_factory=lambda: [("Content-Type", "application/json")]
    )
    reason: str | None = None
    content_length: bool = True


class FakePool:
    """Stands in for the urllib3 pool: records each call, answers or raises as told."""

    def __init__(self, answer: FakeAnswer | None = None, error: Exception | None = None) -> None:
        self.answer = answer or FakeAnswer()
        self.error = error
        self.calls: list[UpstreamCall] = []
        self.responses: list[urllib3.HTTPResponse] = []

    def urlopen(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        body = kwargs.pop("body", None)
        headers = kwargs.pop("headers", {})
        if body is not None and not isinstance(body, bytes):
            body = b"".join(iter(lambda: body.read(8192), b""))
        self.calls.append(UpstreamCall(method, url, dict(headers), body, kwargs))
        if self.error is not None:
            raise self.error
        header_dict = urllib3.HTTPHeaderDict()
        for name, value in self.answer.headers:
            header_dict.add(name, value)
        if self.answer.content_length:
            header_dict["Content-Length"] = str(len(self.answer.body))
        response = urllib3.HTTPResponse(
            body=io.BytesIO(self.answer.body),
            headers=header_dict,
            status=self.answer.status,
            reason=self.answer.reason,
            preload_content=False,
            decode_content=False,
        )
        self.responses.append(response)
        return response

    @property
    def last(self) -> UpstreamCall:
        return self.calls[-1]
