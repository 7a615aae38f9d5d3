"""Named migration stages, derived from the flag's rollout and variants (pure, no IO).

The flag is the only source of truth; a stage is a name for where its rollout and
variant weights put orders:

- ``off``: no order on the new side (rollout 0 %, or no weight on either variant);
- ``shadow``: some orders shadowed (legacy for real, instant in dry run), none on instant;
- ``live``: a share of orders on instant, the rest legacy or shadow;
- ``complete``: every order on instant (legacy only as the fallback).

The kill switch (``enabled``) is shown beside the stage, not folded into it: a killed
``live`` rollout is still ``live`` and returns there when enabled again.

:func:`stage_shape` gives the rollout and weights ``strangler rollout stage`` sets:
``shadow`` and ``live`` use the shadow-first shape (rollout 100 % with the shadow variant
taking whatever instant does not), so every order not on instant is compared, and the
gate steps the instant weight. ``live`` keeps at least ``shadow_share`` % in shadow.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_LIVE_PERCENT",
    "DEFAULT_LIVE_SHADOW_SHARE",
    "Shape",
    "Shares",
    "Stage",
    "goes_live",
    "shares",
    "stage_of",
    "stage_shape",
]

#: The share of orders a live stage keeps in shadow unless told otherwise.
DEFAULT_LIVE_SHADOW_SHARE = 10
#: The share of orders ``rollout stage live`` puts on instant unless told otherwise.
DEFAULT_LIVE_PERCENT = 1
_ALL = 100


class Stage(enum.StrEnum):
    """A migration stage, in the order a rollout walks them."""

    OFF = "off"
    SHADOW = "shadow"
    LIVE = "live"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Shares:
    """Percent of orders the flag sends to instant and to shadow (the rest: legacy)."""

    instant: float
    shadow: float

    @property
    def stage(self) -> Stage:
        """The stage these shares make."""
        if self.instant <= 0:
            return Stage.SHADOW if self.shadow > 0 else Stage.OFF
        return Stage.COMPLETE if self.instant >= _ALL else Stage.LIVE


@dataclass(frozen=True, slots=True)
class Shape:
    """What a stage sets on the flag: the rollout % and the variant weights in percent."""

    rollout: int
    variants: Mapping[str, int]


def shares(rollout: int, variants: Mapping[str, float], *, enabled: bool = True) -> Shares:
    """The shares of orders on instant and shadow; both 0 when the flag is killed."""
    if not enabled:
        return Shares(0.0, 0.0)
    total = sum(variants.get(name, 0) for name in ("instant", "shadow"))
    if total <= 0:
        return Shares(0.0, 0.0)
    instant = rollout * variants.get("instant", 0) / total
    shadow = rollout * variants.get("shadow", 0) / total
    return Shares(round(instant, 4), round(shadow, 4))


def stage_of(rollout: int, variants: Mapping[str, float]) -> Stage:
    """The stage of a rollout and its variant weights (percent), kill switch aside."""
    return shares(rollout, variants).stage


def goes_live(before: Shares, after: Shares) -> bool:
    """True when a change puts orders on instant where none were: it needs evidence."""
    return before.instant <= 0 < after.instant


def stage_shape(stage: Stage, *, percent: int | None = None, shadow_share: int) -> Shape:
    """The rollout and weights a stage sets; ValueError saying what to change otherwise.

    ``percent``: for ``shadow`` the share of orders shadowed (default 100), for ``live``
    the share on instant (default 1); ``off`` and ``complete`` take none. ``live`` refuses
    a percent that leaves less than ``shadow_share`` % in shadow.
    """
    if not 0 <= shadow_share < _ALL:
        raise ValueError(f"the live shadow share must be 0..99 %, got {shadow_share}")
    if stage in (Stage.OFF, Stage.COMPLETE) and percent is not None:
        raise ValueError(f"stage {stage} takes no percentage (it is all legacy or all instant)")
    if stage is Stage.OFF:
        return Shape(0, {"instant": 0, "shadow": _ALL})
    if stage is Stage.COMPLETE:
        return Shape(_ALL, {"instant": _ALL, "shadow": 0})
    if stage is Stage.SHADOW:
        shadowed = _ALL if percent is None else _checked(percent, "shadow")
        return Shape(shadowed, {"instant": 0, "shadow": _ALL})
    live = DEFAULT_LIVE_PERCENT if percent is None else _checked(percent, "live")
    if _ALL - live < shadow_share:
        raise ValueError(
            f"live at {live}% leaves {_ALL - live}% in shadow, below the live stage's "
            f"shadow share of {shadow_share}%: use a lower percentage, a lower "
            "--shadow-share (STRANGLER_LIVE_SHADOW_SHARE), or stage complete"
        )
    return Shape(_ALL, {"instant": live, "shadow": _ALL - live})


def _checked(percent: int, stage: str) -> int:
    if not 1 <= percent <= _ALL:
        raise ValueError(f"stage {stage} takes a percentage of orders from 1 to 100, got {percent}")
    return percent
