"""The demo's accounting: per-path counts and times, and a line that accounts for every order.

Pure computation over the ledger's order stories and the legacy app's order records; no IO.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strangler.report.verdict import Check
from strangler.rollout.policy import Action, GateDecision

__all__ = [
    "DemoSummary",
    "PathStats",
    "ShadowCounts",
    "gate_clause",
    "headline",
    "nearest_rank",
    "summarize",
]

_OUTCOMES = ("fulfilled", "rejected_fraud", "payment_declined", "failed")
_HEADLINE_STEPS = (("fraud_scan", "fraud"), ("authorize_payment", "payment"), ("fulfill", "fulfil"))
_BUSINESS_STEPS = frozenset({"fraud_scan", "authorize_payment", "fulfill"})


@dataclass(frozen=True, slots=True)
class PathStats:
    """Orders the flag sent down one path, their outcomes and their processing times.

    ``fell_back`` counts instant orders handed back to the batch jobs after a failure;
    ``claim_lost`` those the batch jobs had already taken when the instant path tried to
    claim them (so legacy processed them, once).
    """

    path: str
    orders: int
    outcomes: Mapping[str, int]
    fell_back: int
    claim_lost: int
    seconds: Sequence[float]

    @property
    def p50(self) -> float | None:
        """Median processing time (notification to terminal), in seconds."""
        return nearest_rank(self.seconds, 50)

    @property
    def p99(self) -> float | None:
        """99th percentile processing time, in seconds."""
        return nearest_rank(self.seconds, 99)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Every order accounted for: received, terminal, lost, stuck, processed twice."""

    orders_in: int
    terminal: int
    lost: tuple[str, ...]
    stuck: tuple[str, ...]
    processed_twice: tuple[str, ...]
    paths: tuple[PathStats, ...]

    @property
    def ok(self) -> bool:
        """True when every order is terminal exactly once and none was processed twice."""
        return not (self.lost or self.stuck or self.processed_twice)

    def lines(self) -> list[str]:
        """The summary as a table and an accounting line, for a terminal."""
        header = f"{'path':<8} {'orders':>6} " + " ".join(f"{o:>16}" for o in _OUTCOMES)
        rows = [header + f" {'fell back':>9} {'claim lost':>10} {'p50':>8} {'p99':>8}"]
        for stats in self.paths:
            counts = " ".join(f"{stats.outcomes.get(o, 0):>16}" for o in _OUTCOMES)
            rows.append(
                f"{stats.path:<8} {stats.orders:>6} {counts} {stats.fell_back:>9} "
                f"{stats.claim_lost:>10} {_seconds(stats.p50):>8} {_seconds(stats.p99):>8}"
            )
        rows.append(
            f"accounting: {self.orders_in} in, {self.terminal} terminal, {len(self.lost)} lost, "
            f"{len(self.stuck)} not terminal, {len(self.processed_twice)} processed twice"
        )
        for label, ids in (
            ("lost", self.lost),
            ("not terminal", self.stuck),
            ("processed twice", self.processed_twice),
        ):
            if ids:
                rows.append(f"  {label}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
        return rows


@dataclass(frozen=True, slots=True)
class ShadowCounts:
    """The shadow comparison as the headline tells it: counts per step, from the report.

    ``steps`` maps a step to (mismatches, compared).
    """

    compared: int
    mismatched_orders: int
    not_compared: int
    steps: Mapping[str, tuple[int, int]]


def headline(
    summary: DemoSummary,
    shadow: ShadowCounts | None,
    gate: tuple[GateDecision, Sequence[Check]] | None = None,
) -> str:
    """The demo's last line: speed-up, accounting, the shadow comparison and the gate."""
    instant, batch = _p50(summary, "instant"), _p50(summary, "legacy")
    if instant is not None and batch is not None:
        ratio = f"{batch / instant:,.0f}x faster" if instant > 0 else "faster"
        speed = f"instant p50 {_spoken(instant)} vs batch p50 {_spoken(batch)}: {ratio}"
    else:
        speed = "instant vs batch: not both paths had terminal orders"
    accounting = (
        f"{summary.terminal}/{summary.orders_in} accounted for, {len(summary.lost)} lost, "
        f"{len(summary.processed_twice)} processed twice"
    )
    line = f"{speed}; {accounting}; {_shadow_clause(shadow)}"
    return line if gate is None else f"{line}; {gate_clause(*gate)}"


def gate_clause(gate: GateDecision, checks: Sequence[Check]) -> str:
    """What the gate decided and did, with the first check that decided it."""
    done = {
        Action.ADVANCE: f"gate passed: advanced {gate.from_rollout}% -> {gate.to_rollout}%",
        Action.HOLD: f"gate held at {gate.from_rollout}% (rollout unchanged)",
        Action.FAIL: f"gate FAILED at {gate.from_rollout}% (rollout left as it was)",
        Action.ROLL_BACK: f"gate FAILED at {gate.from_rollout}% and rolled back to "
        f"{gate.rollback_to}"
        + (" (flag killed: every order goes to legacy)" if gate.rollback_to == "legacy" else ""),
    }[gate.action]
    wanted = {Action.FAIL: "fail", Action.ROLL_BACK: "fail", Action.HOLD: "hold"}
    deciding = [c for c in checks if c.status == wanted.get(gate.action)]
    if not deciding:
        return f"{done}: {gate.reason}"
    more = f" (and {len(deciding) - 1} more)" if len(deciding) > 1 else ""
    return f"{done}: {deciding[0].name}: {deciding[0].reason}{more}"


def _shadow_clause(shadow: ShadowCounts | None) -> str:
    if shadow is None:
        return "shadow: no report"
    steps = ", ".join(
        f"{label} {shadow.steps.get(step, (0, shadow.compared))[0]}"
        f"/{shadow.steps.get(step, (0, shadow.compared))[1]}"
        for step, label in _HEADLINE_STEPS
    )
    return (
        f"shadow: {shadow.compared} compared, {shadow.mismatched_orders} mismatches "
        f"({steps}), {shadow.not_compared} not compared"
    )


def _p50(summary: DemoSummary, path: str) -> float | None:
    return next((stats.p50 for stats in summary.paths if stats.path == path), None)


def _spoken(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def summarize(
    order_ids: Sequence[str],
    stories: Mapping[str, Mapping[str, Any]],
    legacy_orders: Mapping[str, Mapping[str, Any]],
) -> DemoSummary:
    """Account for ``order_ids`` from their ledger stories and legacy records."""
    lost = tuple(oid for oid in order_ids if oid not in stories)
    stuck = tuple(
        oid for oid in order_ids if oid in stories and stories[oid]["status"] not in _OUTCOMES
    )
    twice = tuple(oid for oid in order_ids if _processed_twice(legacy_orders.get(oid)))
    by_path: dict[str, list[Mapping[str, Any]]] = {}
    for oid in order_ids:
        story = stories.get(oid)
        if story is not None and story.get("decision"):
            by_path.setdefault(story["decision"]["path"], []).append(story)
    paths = tuple(
        _path_stats(path, by_path[path])
        for path in ("legacy", "instant", "shadow")
        if path in by_path
    )
    return DemoSummary(
        orders_in=len(order_ids),
        terminal=len(order_ids) - len(lost) - len(stuck),
        lost=lost,
        stuck=stuck,
        processed_twice=twice,
        paths=paths,
    )


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def _path_stats(path: str, stories: Sequence[Mapping[str, Any]]) -> PathStats:
    outcomes = Counter(story["status"] for story in stories)
    handoffs = Counter(story.get("handoff") for story in stories)
    seconds = [s for s in (_processing_seconds(story) for story in stories) if s is not None]
    return PathStats(
        path,
        len(stories),
        dict(outcomes),
        fell_back=handoffs["fallback"],
        claim_lost=handoffs["legacy_owned"],
        seconds=seconds,
    )


def _processing_seconds(story: Mapping[str, Any]) -> float | None:
    """Order creation (the notification's created_at, else its receipt) to terminal.

    The legacy app can finish an order before its notification reaches us, so receipt
    alone would make legacy look faster than it is.
    """
    stamps = story["timestamps"]
    start = story.get("notification", {}).get("created_at") or stamps.get("received")
    if not start or not stamps.get("terminal"):
        return None
    started = _aware(datetime.fromisoformat(start))
    terminal = _aware(datetime.fromisoformat(stamps["terminal"]))
    return (terminal - started).total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _processed_twice(record: Mapping[str, Any] | None) -> bool:
    """True when the legacy app performed a business step more than once.

    A step done by the instant path and the next one by the batch jobs is a fallback
    hand-off, not a double; the same step done twice, by anyone, is.
    """
    if record is None:
        return False
    steps = Counter(
        entry["step"]
        for entry in record.get("history", [])
        if entry.get("step") in _BUSINESS_STEPS and not entry.get("error")
    )
    return any(count > 1 for count in steps.values())


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"
