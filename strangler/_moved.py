"""Old import paths of modules that moved in 0.2, kept one release with a DeprecationWarning.

A meta path finder answers an old name with the module at its new place, so both names are
one module object and nothing is defined twice. Delete this file and its one use in
``strangler/__init__.py`` in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

MOVED = {
    "strangler.breaker_report": "strangler.background.breaker_report",
    "strangler.comparer": "strangler.background.comparer",
    "strangler.compare.charts": "strangler.report.charts",
    "strangler.compare.gate": "strangler.rollout.policy",
    "strangler.compare.render_html": "strangler.report.render_html",
    "strangler.compare.render_json": "strangler.report.render_json",
    "strangler.compare.render_text": "strangler.report.render_text",
    "strangler.compare.report": "strangler.report.report",
    "strangler.compare.stats": "strangler.report.stats",
    "strangler.compare.tables": "strangler.report.tables",
    "strangler.compare.timeline": "strangler.report.timeline",
    "strangler.compare.verdict": "strangler.report.verdict",
    "strangler.dispatcher": "strangler.routing.dispatcher",
    "strangler.follower": "strangler.background.follower",
    "strangler.handback": "strangler.rollout.handback",
    "strangler.noise": "strangler.background.noise",
    "strangler.processes": "strangler.demo.processes",
    "strangler.reconciler": "strangler.background.reconciler",
    "strangler.retention": "strangler.background.retention",
    "strangler.role_loop": "strangler.background.role_loop",
    "strangler.rollout_evidence": "strangler.rollout.evidence",
    "strangler.rollout_gate": "strangler.rollout.gate",
    "strangler.rollout_stage": "strangler.rollout.stage",
    "strangler.router": "strangler.routing.router",
    "strangler.runtime": "strangler.routing.runtime",
    "strangler.unleash_admin": "strangler.rollout.unleash_admin",
    "strangler.wakeups": "strangler.routing.wakeups",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module at the new name."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002  (the finder protocol's signature)
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new_name = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new_name}; the old path goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new_name)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was loaded, once, under its new name."""


def install() -> None:
    """Answer the old names from now on (idempotent)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
