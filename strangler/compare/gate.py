"""The rollout gate's decision: plan + current rollout + verdict -> one action (pure, no IO).

The verdict (pass, hold or fail, with a reason per check) comes from the report for the
current step's window; this module only turns it into what to do next:

- ``advance`` to the next plan step when the verdict passes on enough orders;
- ``hold`` when data is short, the verdict is inconclusive, the flag is killed or the
  plan is finished;
- ``fail`` when a check fails, or ``roll_back`` (to ``legacy``: kill the flag; to
  ``shadow``: the new side runs in shadow only) when asked to roll back on failure.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EXIT_CODES",
    "Action",
    "Evidence",
    "GateDecision",
    "GatePolicy",
    "RollbackTarget",
    "decide",
    "parse_plan",
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


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the report says about the current step's window.

    ``verdict`` is ``pass``, ``hold`` or ``fail``; ``reasons`` are the checks' reasons,
    as the verdict gave them; ``orders`` is how many orders were routed in the window.
    """

    verdict: str
    reasons: tuple[str, ...]
    orders: int

    def __post_init__(self) -> None:
        if self.verdict not in _VERDICTS:
            raise ValueError(f"verdict must be one of pass, hold, fail; got {self.verdict!r}")
        if self.orders < 0:
            raise ValueError(f"orders must be >= 0, got {self.orders}")


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The plan's steps (ascending percentages), the data needed and what a failure does."""

    plan: tuple[int, ...]
    min_orders: int = 100
    rollback_on_fail: bool = False
    rollback_to: RollbackTarget = RollbackTarget.LEGACY

    def __post_init__(self) -> None:
        if not self.plan or list(self.plan) != sorted(set(self.plan)):
            raise ValueError(f"the plan must be ascending distinct percentages, got {self.plan}")
        if self.plan[0] < 1 or self.plan[-1] > 100:
            raise ValueError(f"plan steps must lie in 1..100, got {self.plan}")
        if self.min_orders < 1:
            raise ValueError(f"min_orders must be at least 1, got {self.min_orders}")

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


def decide(policy: GatePolicy, *, enabled: bool, rollout: int, evidence: Evidence) -> GateDecision:
    """Decide what to do with a rollout at ``rollout`` % given the window's evidence."""
    summary = _summary(evidence)
    if not enabled:
        return _stay(Action.HOLD, rollout, "the flag is killed; enable it before gating")
    target = policy.next_step(rollout)
    if evidence.verdict == "fail":
        return _failed(policy, rollout, summary)
    if target is None:
        return _stay(Action.HOLD, rollout, f"at {rollout}%, the plan's last step; {summary}")
    if evidence.orders < policy.min_orders:
        return _stay(
            Action.HOLD,
            rollout,
            f"not enough data: {evidence.orders} orders since the last change, "
            f"{policy.min_orders} needed; {summary}",
        )
    if evidence.verdict == "hold":
        return _stay(Action.HOLD, rollout, f"inconclusive: {summary}")
    return GateDecision(
        Action.ADVANCE, rollout, target, f"every check passed on {evidence.orders} orders"
    )


def _failed(policy: GatePolicy, rollout: int, summary: str) -> GateDecision:
    if not policy.rollback_on_fail:
        return _stay(Action.FAIL, rollout, f"a check failed: {summary}")
    return GateDecision(
        Action.ROLL_BACK,
        rollout,
        rollout,
        f"a check failed, rolling back to {policy.rollback_to}: {summary}",
        rollback_to=policy.rollback_to,
    )


def _stay(action: Action, rollout: int, reason: str) -> GateDecision:
    return GateDecision(action, rollout, rollout, reason)


def _summary(evidence: Evidence) -> str:
    reasons: Sequence[str] = evidence.reasons or (f"verdict {evidence.verdict}",)
    return "; ".join(reasons)
