"""A known divergence: the per-order API deciding differently from the batch jobs.

``strangler legacy-sim --api-divergence fraud_scan=0.05[,authorize_payment=0.01]`` makes
the per-order API (dry run or not) decide differently for that share of orders, chosen
by a hash of the step and the order id, so the same order always diverges at the same
step, in every run and every process. The batch jobs keep the plain rules. It is how the
tests and the demo prove that the comparison finds real differences (docs/legacy.md).

What diverging means per step: ``fraud_scan`` flips the verdict (``pass`` becomes a
``reject`` with reason ``api_divergence``, a reject becomes ``pass``);
``authorize_payment`` flips ``authorized`` and ``declined``; ``fulfill`` issues one
voucher more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from strangler.sim.rules import Verdict

__all__ = [
    "DIVERGENCE_REASON",
    "DIVERGENT_STEPS",
    "check_share",
    "diverge",
    "diverges",
    "parse_divergence",
]

DIVERGENT_STEPS = ("fraud_scan", "authorize_payment", "fulfill")
DIVERGENCE_REASON = "api_divergence"
_FLIPS = {
    "pass": Verdict("reject", DIVERGENCE_REASON),
    "reject": Verdict("pass"),
    "authorized": Verdict("declined", DIVERGENCE_REASON),
    "declined": Verdict("authorized"),
}


def parse_divergence(spec: str) -> Mapping[str, float]:
    """``"fraud_scan=0.05,authorize_payment=0.01"`` -> ``{"fraud_scan": 0.05, ...}``.

    An empty spec means no divergence. Raises ValueError naming the entry that is not
    ``step=share`` with a known step and a share between 0 and 1.
    """
    shares: dict[str, float] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        step, sep, number = entry.partition("=")
        step = step.strip()
        if not sep or step not in DIVERGENT_STEPS:
            raise ValueError(
                f"api divergence {entry!r} must look like STEP=SHARE with STEP one of "
                f"{', '.join(DIVERGENT_STEPS)}, e.g. fraud_scan=0.05"
            )
        shares[step] = check_share(step, number)
    return MappingProxyType(shares)


def check_share(step: str, value: object) -> float:
    """A divergence share as a float in [0, 1]; raises ValueError naming the step."""
    try:
        share = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"api divergence of {step}: {value!r} is not a number") from None
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"api divergence of {step} must be between 0 and 1, got {share}")
    return share


def diverges(order_id: str, step: str, share: float) -> bool:
    """True when the per-order API diverges for this order at this step (deterministic)."""
    if share <= 0.0:
        return False
    digest = hashlib.sha256(f"api_divergence:{step}:{order_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def diverge(step: str, verdict: Verdict) -> Verdict:
    """The different decision the per-order API takes at ``step`` instead of ``verdict``."""
    if step == "fulfill":
        extra = hashlib.sha256(f"extra:{verdict.vouchers}".encode()).hexdigest()[:12].upper()
        return Verdict(verdict.decision, verdict.reason, (*verdict.vouchers, f"GC-{extra}"))
    return _FLIPS.get(verdict.decision, verdict)
