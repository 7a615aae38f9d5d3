"""The rollout gate's decision: plan + current rollout + verdict -> one action (pure, no IO).

The verdict (pass, hold or fail, with a reason per check) comes from the report for the
current step's window; this module only turns it into what to do next:

- ``advance`` to the next plan step when the verdict passes on enough orders;
- ``hold`` when data is short, the verdict is inconclusive, the flag is killed or the
  plan is finished;
- ``fail`` when a check fails, when a hold waiting for evidence outlives its budget
  (``max_hold_orders`` new-side orders or ``max_hold_s`` seconds since the step began),
  or when the verdict could not be computed (:func:`fail_safe`); ``roll_back`` instead
  (to ``legacy``: kill the flag; to ``shadow``: the new side runs in shadow only) when
  asked to roll back on failure.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from strangler.exceptions import RolloutError

__all__ = [
    "EXIT_CODES",
    "Action",
    "Evidence",
    "GateDecision",
    "GatePolicy",
    "RollbackTarget",
    "decide",
    "fail_safe",
    "parse_hold_budget",
    "parse_plan",
    "parse_rate",
]


class Action(enum.StrEnum):
    """What the gate does with the rollout."""

    ADVANCE = "advance"
    HOLD = "hold"
    FAIL = "fail"
    ROLL_BACK = "roll_back"


class RollbackTarget(enum.StrEnum):
    """Where a rollback sends the new side: nowhere (kill) or shadow only."""

    LEGACY = "legacy"
    SHADOW = "shadow"


#: The documented exit codes of ``strangler rollout advance`` (2 is bad input).
EXIT_CODES = {Action.ADVANCE: 0, Action.HOLD: 3, Action.FAIL: 4, Action.ROLL_BACK: 5}

_VERDICTS = frozenset({"pass", "hold", "fail"})
#: The default hold budget: a step may wait this many new-side orders, or this long.
DEFAULT_MAX_HOLD_ORDERS = 10_000
DEFAULT_MAX_HOLD_S = 24 * 3600.0
_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the report says about the current step's window.

    ``verdict`` is ``pass``, ``hold`` or ``fail``; ``reasons`` are the checks' reasons,
    as the verdict gave them; ``orders`` is how many new-side (instant + shadow) orders
    were routed in the window; ``age_s`` how long ago the window began (None: unknown).
    """

    verdict: str
    reasons: tuple[str, ...]
    orders: int
    age_s: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in _VERDICTS:
            raise ValueError(f"verdict must be one of pass, hold, fail; got {self.verdict!r}")
        if self.orders < 0:
            raise ValueError(f"orders must be >= 0, got {self.orders}")


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The plan's steps (ascending percentages), the data needed and what a failure does.

    The hold budget (``max_hold_orders`` new-side orders, ``max_hold_s`` seconds since the
    step began; None for no limit) turns a hold that waits for evidence into a failure.
    """

    plan: tuple[int, ...]
    min_orders: int = 100
    rollback_on_fail: bool = False
    rollback_to: RollbackTarget = RollbackTarget.LEGACY
    max_hold_orders: int | None = DEFAULT_MAX_HOLD_ORDERS
    max_hold_s: float | None = DEFAULT_MAX_HOLD_S

    def __post_init__(self) -> None:
        if not self.plan or list(self.plan) != sorted(set(self.plan)):
            raise ValueError(f"the plan must be ascending distinct percentages, got {self.plan}")
        if self.plan[0] < 1 or self.plan[-1] > 100:
            raise ValueError(f"plan steps must lie in 1..100, got {self.plan}")
        if self.min_orders < 1:
            raise ValueError(f"min_orders must be at least 1, got {self.min_orders}")
        if self.max_hold_orders is not None and self.max_hold_orders < 1:
            raise ValueError(
                f"the hold budget must be at least 1 order, got {self.max_hold_orders}"
            )
        if self.max_hold_s is not None and self.max_hold_s <= 0:
            raise ValueError(f"the hold budget must be a positive time, got {self.max_hold_s} s")

    def next_step(self, rollout: int) -> int | None:
        """The first plan step above ``rollout``; None when the plan is finished."""
        return next((step for step in self.plan if step > rollout), None)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's action, the rollout it leads to and why (for the audit log)."""

    action: Action
    from_rollout: int
    to_rollout: int
    reason: str
    rollback_to: RollbackTarget | None = None

    @property
    def exit_code(self) -> int:
        """The documented exit code for this action."""
        return EXIT_CODES[self.action]


def parse_plan(text: str) -> tuple[int, ...]:
    """``"1,5,25,50,100"`` -> ``(1, 5, 25, 50, 100)``; ValueError saying what is wrong."""
    parts = [part.strip().removesuffix("%") for part in text.split(",") if part.strip()]
    try:
        steps = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"--plan must be comma-separated whole percentages such as 1,5,25,50,100, got {text!r}"
        ) from None
    GatePolicy(plan=steps)
    return steps


def parse_hold_budget(values: Sequence[str]) -> tuple[int | None, float | None]:
    """``("2000", "6h")`` -> ``(2000, 21600.0)``: orders, and seconds (``s m h d`` suffixes).

    A kind not given keeps its default; ``none`` lifts both limits. Raises ValueError
    naming the value that is neither.
    """
    orders: int | None = DEFAULT_MAX_HOLD_ORDERS
    seconds: float | None = DEFAULT_MAX_HOLD_S
    for value in values:
        text = value.strip().lower()
        if text == "none":
            orders, seconds = None, None
        elif text.isdigit():
            orders = int(text)
        elif text[:-1].replace(".", "", 1).isdigit() and text[-1:] in _UNITS_S:
            seconds = float(text[:-1]) * _UNITS_S[text[-1]]
        else:
            raise ValueError(
                f"--max-hold must be a number of orders (10000), a time (30m, 6h, 1d) "
                f"or none, got {value!r}"
            )
    return orders, seconds


def decide(policy: GatePolicy, *, enabled: bool, rollout: int, evidence: Evidence) -> GateDecision:
    """Decide what to do with a rollout at ``rollout`` % given the window's evidence."""
    summary = _summary(evidence)
    if not enabled:
        return _stay(Action.HOLD, rollout, "the flag is killed; enable it before gating")
    target = policy.next_step(rollout)
    if evidence.verdict == "fail":
        return _failed(policy, rollout, f"a check failed: {summary}")
    if target is None:
        return _stay(Action.HOLD, rollout, f"at {rollout}%, the plan's last step; {summary}")
    if evidence.orders < policy.min_orders:
        return _hold(
            policy,
            rollout,
            evidence,
            f"not enough data: {evidence.orders} orders since the last change, "
            f"{policy.min_orders} needed; {summary}",
        )
    if evidence.verdict == "hold":
        return _hold(policy, rollout, evidence, f"inconclusive: {summary}")
    return GateDecision(
        Action.ADVANCE, rollout, target, f"every check passed on {evidence.orders} orders"
    )


def fail_safe(policy: GatePolicy, *, enabled: bool, rollout: int, cause: str) -> GateDecision:
    """The decision when the verdict could not be computed: a failure, never a pass.

    A killed flag stays killed (hold): there is nothing left to roll back.
    """
    if not enabled:
        return _stay(Action.HOLD, rollout, f"the flag is killed; the verdict failed: {cause}")
    return _failed(policy, rollout, f"the gate could not compute its verdict: {cause}")


def _hold(policy: GatePolicy, rollout: int, evidence: Evidence, reason: str) -> GateDecision:
    """A hold waiting for evidence, or a failure once it is past the hold budget."""
    spent = _over_budget(policy, evidence)
    if spent is None:
        return _stay(Action.HOLD, rollout, reason)
    return _failed(policy, rollout, f"held past the budget ({spent}): {reason}")


def _over_budget(policy: GatePolicy, evidence: Evidence) -> str | None:
    limit = policy.max_hold_orders
    if limit is not None and evidence.orders >= limit:
        return f"{evidence.orders} orders since the step began, --max-hold {limit}"
    age, seconds = evidence.age_s, policy.max_hold_s
    if age is not None and seconds is not None and age >= seconds:
        return f"{age:.0f} s since the step began, --max-hold {seconds:g} s"
    return None


def _failed(policy: GatePolicy, rollout: int, why: str) -> GateDecision:
    if not policy.rollback_on_fail:
        return _stay(Action.FAIL, rollout, why)
    return GateDecision(
        Action.ROLL_BACK,
        rollout,
        rollout,
        f"rolling back to {policy.rollback_to}: {why}",
        rollback_to=policy.rollback_to,
    )


def _stay(action: Action, rollout: int, reason: str) -> GateDecision:
    return GateDecision(action, rollout, rollout, reason)


def _summary(evidence: Evidence) -> str:
    reasons: Sequence[str] = evidence.reasons or (f"verdict {evidence.verdict}",)
    return "; ".join(reasons)


def parse_rate(value: str, option: str) -> float:
    """``"0.5%"`` -> 0.005, ``"0.005"`` -> 0.005; RolloutError naming the option otherwise."""
    text = value.strip()
    try:
        return float(text.removesuffix("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise RolloutError(
            f"{option} must be a rate such as 0.5% or 0.005, got {value!r}"
        ) from None
