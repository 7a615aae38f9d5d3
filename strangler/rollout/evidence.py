"""Whether the current step has the comparison evidence to go live (the gate, read only).

The one place rollout control asks the gate: ``rollout set``, ``rollout variants``,
``rollout stage``, ``PUT /_strangler/rollout`` and the dashboard refuse a change that
puts orders on instant where none were unless :func:`comparison_evidence` passes (or the
user says ``--no-evidence``). It judges the current step's window with the gate's own
rules (:func:`strangler.rollout.gate.evaluate_gate`, default thresholds) and passes only
when shadow orders were compared and every per-step mismatch check passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strangler.exceptions import ConfigurationError, LedgerError
from strangler.rollout.controller import EvidenceCheck

if TYPE_CHECKING:
    from strangler.ledger import SqlLedger
    from strangler.report.verdict import Thresholds
    from strangler.rollout.gate import GateLedger, RolloutReader

__all__ = ["comparison_evidence", "evidence_from"]


def comparison_evidence(
    controller: RolloutReader, ledger: GateLedger, thresholds: Thresholds | None = None
) -> EvidenceCheck:
    """Judge the current step's comparisons; the check says what is missing when it fails."""
    # The gate and its verdict load when a change asks, not with every controller (SQLAlchemy).
    from strangler.report.verdict import Thresholds  # noqa: PLC0415
    from strangler.rollout.gate import evaluate_gate  # noqa: PLC0415
    from strangler.rollout.policy import GatePolicy  # noqa: PLC0415

    any_plan = GatePolicy(plan=(100,))
    # Comparisons judge the new code whatever the step: an unrecorded step's window
    # falls back to the latest recorded change rather than starting empty.
    evaluation = evaluate_gate(
        controller, ledger, any_plan, thresholds or Thresholds(), unrecorded_from_now=False
    )
    if evaluation.error is not None:
        return EvidenceCheck(
            False, f"the comparison verdict could not be computed: {evaluation.error}"
        )
    window = f"since {evaluation.since.isoformat()}" if evaluation.since else "on the whole ledger"
    mismatch = [check for check in evaluation.checks if check.name.startswith("mismatch")]
    if evaluation.comparison_passes:
        return EvidenceCheck(True, f"every per-step mismatch check passes {window}")
    missing = "; ".join(
        f"{check.name}: {check.reason}" for check in mismatch if check.status != "pass"
    )
    return EvidenceCheck(
        False,
        f"no passing comparison verdict in the current step's window ({window}): "
        f"{missing or 'no shadow orders were compared'}",
    )


def evidence_from(
    controller: RolloutReader, open_ledger: Callable[[], SqlLedger]
) -> Callable[[], EvidenceCheck]:
    """A controller's ``evidence`` callable that opens the ledger only when asked.

    A ledger that cannot be opened or read is no evidence: the check fails saying why.
    """

    def check() -> EvidenceCheck:
        try:
            ledger = open_ledger()
        except (LedgerError, ConfigurationError) as exc:  # no ledger, no evidence: refuse
            return EvidenceCheck(False, f"the ledger cannot be read: {exc}")
        try:
            return comparison_evidence(controller, ledger)
        finally:
            ledger.close()

    return check
