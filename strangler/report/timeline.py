"""How one rollout change reads on the timeline (pure; the text and HTML reports share it)."""

from __future__ import annotations

from strangler.report.report import RolloutPoint

__all__ = ["describe_change"]


def describe_change(point: RolloutPoint) -> str:
    """``"gate_advance: 100 -> 100 %, instant=10% shadow=90%; stage live"`` and so on.

    An event recorded before the ledger kept its kind reads as before: ``"0 -> 10 %"``.
    """
    moved = f"{'-' if point.from_rollout is None else point.from_rollout} -> {point.to_rollout} %"
    if point.kind is None:
        return moved
    parts = [f"{point.kind}: {moved}"]
    if point.instant_weight is not None and point.shadow_weight is not None:
        parts.append(f", instant={point.instant_weight:g}% shadow={point.shadow_weight:g}%")
    if point.enabled is False:
        parts.append(", killed")
    if point.stage is not None:
        parts.append(f"; stage {point.stage}")
    if point.no_evidence:
        parts.append("; went live without comparison evidence (--no-evidence)")
    return "".join(parts)
