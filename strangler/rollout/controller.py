"""Rollout control: show and change the flag, atomically, with an audit trail.

One :class:`RolloutController` Protocol, two implementations:

- :class:`FileRolloutController` (embedded): rewrites the flag file atomically (temp file,
  fsync, rename) under a lock, so running FlagSources pick the change up within seconds.
- :class:`UnleashRolloutController` (server): changes the flag through the Unleash Admin
  API; Unleash keeps its own event log as well.

Both append every accepted change to the local audit log (JSON lines: when, who, from,
to, why), then put it on the ledger's rollout timeline (:class:`TimelineRecorder`) by
:func:`record_on_timeline`, the one rule for every door: a timeline write that fails does
not fail the change, which the returned change says (``timeline_error``). Input is checked
before anything is read or written: a bad percentage, an unknown variant, weights that do
not add up to 100 or a flag file that fails validation raise
:class:`~strangler.exceptions.RolloutError`, and nothing changes. The same controller
serves the CLI (``strangler rollout``, ``strangler rollout advance``) and the sidecar's
admin endpoint.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from strangler.exceptions import (
    ConfigurationError,
    EvidenceRequired,
    FlagFileError,
    LedgerError,
    RolloutError,
    UnleashAdminError,
)
from strangler.flags import (
    FLAG_NAME,
    ROUTED_VARIANTS,
    WEIGHT_TOTAL,
    find_feature,
    load_flag_document,
    read_flag,
    rollout_strategy,
)
from strangler.rollout.stage import (
    DEFAULT_LIVE_SHADOW_SHARE,
    Shares,
    Stage,
    goes_live,
    shares,
    stage_of,
    stage_shape,
)
from strangler.settings import Settings

if TYPE_CHECKING:
    import requests

    from strangler.rollout.unleash_admin import UnleashAdminClient

__all__ = [
    "AuditLog",
    "EvidenceCheck",
    "FileRolloutController",
    "RolloutChange",
    "RolloutController",
    "RolloutState",
    "TimelineRecorder",
    "UnleashRolloutController",
    "check_audit_text",
    "checked_weights",
    "parse_percentage",
    "parse_variant_weights",
    "record_on_timeline",
    "rollout_controller_from_settings",
]

_LOCK_TIMEOUT_S = 10.0
_PER_MILLE = WEIGHT_TOTAL // 100  # Unleash weights are per mille; ours are percent
# NUL and lone surrogates cannot be stored as PostgreSQL text; other controls forge lines.
_KINDS = {
    "set_percentage": "set",
    "set_variants": "variants",
    "set_stage": "stage",
    "kill": "kill",
    "enable": "enable",
}
_BAD_AUDIT_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class RolloutState:
    """The flag as rollout control sees it.

    ``variant_weights`` are per mille, as Unleash stores them; :attr:`variants` gives
    percentages. ``source`` is the flag file, or the Unleash URL, project and environment.
    """

    flag: str
    mode: str
    source: str
    enabled: bool
    rollout: int
    variant_weights: Mapping[str, int]
    revision: str

    @property
    def variants(self) -> dict[str, int | float]:
        """Variant weights in percent (whole numbers when they are whole)."""
        return {name: _percent(weight) for name, weight in self.variant_weights.items()}

    @property
    def stage(self) -> Stage:
        """The migration stage the rollout and variants make (the kill switch aside)."""
        return stage_of(self.rollout, self.variants)

    @property
    def shares(self) -> Shares:
        """Percent of new orders on instant and on shadow now (both 0 when killed)."""
        return shares(self.rollout, self.variants, enabled=self.enabled)

    def routing(self) -> dict[str, Any]:
        """What decides routing: enabled, rollout %, variant %; the audit's from and to."""
        return {"enabled": self.enabled, "rollout": self.rollout, "variants": self.variants}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the CLI and the admin endpoint show it."""
        now = self.shares
        return {
            "flag": self.flag,
            "mode": self.mode,
            "source": self.source,
            **self.routing(),
            "stage": self.stage.value,
            "shares": {"instant": now.instant, "shadow": now.shadow},
            "revision": self.revision,
        }


@dataclass(frozen=True, slots=True)
class RolloutChange:
    """One accepted rollout command: who, when, why, and the state before and after.

    ``gate_decision`` names the gate decision that made it (``advance``, ``rollback``,
    ``hold``, ``fail``), None for a person's command. ``timeline_error`` says why the
    ledger's rollout timeline did not take the change (None: it did, or it did not need
    to); the change itself is made and audited either way.
    """

    action: str
    actor: str
    reason: str
    before: RolloutState
    after: RolloutState
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    no_evidence: bool = False
    gate_decision: str | None = None
    timeline_error: str | None = None

    @property
    def kind(self) -> str:
        """What kind of change: set, kill, enable, variants, stage, or gate_<decision>."""
        if self.gate_decision is not None:
            return f"gate_{self.gate_decision}"
        return _KINDS.get(self.action, self.action)

    @property
    def on_timeline(self) -> bool:
        """Whether the change belongs on the timeline: it moved the flag, or the gate decided it.

        A command that asked for the state the flag was already in is audited only; a gate
        hold or failure is kept on the timeline with its evidence (it starts no step).
        """
        return self.changed or self.gate_decision is not None

    @property
    def timeline_recorded(self) -> bool:
        """False when the timeline write failed (``timeline_error`` says why)."""
        return self.timeline_error is None

    def timeline_warning(self) -> str | None:
        """The one line every door shows when the timeline write failed, else None."""
        if self.timeline_error is None:
            return None
        what = "change" if self.changed else "decision"  # a gate hold or failure moves nothing
        return (
            f"the ledger did not record this {what} on its rollout timeline (it is made and "
            f"audited): {self.timeline_error}"
        )

    @property
    def enabled(self) -> bool:
        """Whether the flag is enabled after the change."""
        return self.after.enabled

    @property
    def instant_weight(self) -> float:
        """The instant variant's weight after the change, in percent."""
        return float(self.after.variants.get("instant", 0))

    @property
    def shadow_weight(self) -> float:
        """The shadow variant's weight after the change, in percent."""
        return float(self.after.variants.get("shadow", 0))

    @property
    def stage(self) -> str:
        """The migration stage after the change."""
        return self.after.stage.value

    @property
    def changed(self) -> bool:
        """False when the command asked for the state the flag was already in."""
        return self.before.routing() != self.after.routing()

    @property
    def from_rollout(self) -> int:
        """The rollout percentage before the change."""
        return self.before.rollout

    @property
    def to_rollout(self) -> int:
        """The rollout percentage after the change."""
        return self.after.rollout

    @property
    def flag_revision(self) -> str:
        """The flag revision the change produced."""
        return self.after.revision

    def to_audit_record(self) -> dict[str, Any]:
        """The audit log line: when, who, what, from, to, why."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "flag": self.after.flag,
            "mode": self.after.mode,
            "source": self.after.source,
            "from": self.before.routing(),
            "to": self.after.routing(),
            "reason": self.reason,
            "changed": self.changed,
            "revision_from": self.before.revision,
            "revision_to": self.after.revision,
            "stage_from": self.before.stage.value,
            "stage_to": self.after.stage.value,
            "no_evidence": self.no_evidence,
        }


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    """Whether the current window has a passing comparison verdict, and why not."""

    passes: bool
    why: str


class TimelineRecorder(Protocol):
    """The ledger's rollout timeline, as a controller writes to it (SqlLedger is one).

    Raises LedgerError when the write fails; recording the same change again is a no-op.
    """

    def record_rollout_event(self, event: RolloutChange) -> object: ...


def record_on_timeline(timeline: TimelineRecorder | None, change: RolloutChange) -> RolloutChange:
    """Put an audited change on the ledger's rollout timeline: the one rule for every door.

    The flag store and the audit log are the change; the timeline is the ledger's copy,
    which the reports and the gate's step window read. So a write that fails does not
    fail the change: the change comes back with ``timeline_error`` naming the LedgerError,
    for the door to report beside a success (:meth:`RolloutChange.timeline_warning`). A
    change not :attr:`~RolloutChange.on_timeline`, or no timeline, writes nothing.
    """
    if timeline is None or not change.on_timeline:
        return change
    try:
        timeline.record_rollout_event(change)
    except LedgerError as exc:
        return replace(change, timeline_error=f"{type(exc).__name__}: {exc}")
    return change


class RolloutController(Protocol):
    """Shows and changes the rollout; every change is validated first and audited.

    Raises RolloutError (nothing written) for bad input; server mode may also raise
    UnleashAdminError when Unleash cannot be reached or refuses. A timeline write that
    fails after the change is not raised: the change's ``timeline_error`` says it.
    """

    def show(self) -> RolloutState: ...

    def set_percentage(
        self, pct: int, *, actor: str, reason: str = "", no_evidence: bool = False
    ) -> RolloutChange: ...

    def kill(self, *, actor: str, reason: str = "") -> RolloutChange: ...

    def enable(self, *, actor: str, reason: str = "") -> RolloutChange: ...

    def set_variants(
        self,
        weights: Mapping[str, int],
        *,
        actor: str,
        reason: str = "",
        no_evidence: bool = False,
    ) -> RolloutChange: ...

    def set_stage(
        self,
        stage: Stage,
        *,
        actor: str,
        reason: str = "",
        percent: int | None = None,
        shadow_share: int = DEFAULT_LIVE_SHADOW_SHARE,
        no_evidence: bool = False,
    ) -> RolloutChange: ...


def parse_percentage(text: str) -> int:
    """``"25"`` or ``"25%"`` -> 25; raises RolloutError for anything but a whole 0..100."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = int(cleaned)
    except ValueError:
        raise RolloutError(
            f"rollout percentage must be a whole number from 0 to 100, got {text!r}"
        ) from None
    return _checked_percentage(value)


def parse_variant_weights(text: str) -> dict[str, int]:
    """``"instant=70,shadow=30"`` -> ``{"instant": 70, "shadow": 30}``; checks them too.

    Raises RolloutError for a malformed pair, a repeated or unknown name, a weight outside
    0..100, or weights that do not add up to 100.
    """
    weights: dict[str, int] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (piece.strip() for piece in pair.partition("="))
        if not sep or not name:
            raise RolloutError(
                f"variants must be NAME=PERCENT pairs such as instant=70,shadow=30, got {pair!r}"
            )
        if name in weights:
            raise RolloutError(f"variant {name!r} is given twice in {text!r}")
        try:
            weights[name] = int(value)
        except ValueError:
            raise RolloutError(
                f"variant {name!r}: weight must be a whole percentage, got {value!r}"
            ) from None
    return checked_weights(weights)


class AuditLog:
    """The append-only audit log of rollout changes: one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, change: RolloutChange) -> None:
        """Append one change and fsync, so an accepted change is never unaudited."""
        line = json.dumps(change.to_audit_record(), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first (an absent log has none)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


class _Target(NamedTuple):
    enabled: bool
    rollout: int
    weights: Mapping[str, int]

    @classmethod
    def of(cls, state: RolloutState) -> _Target:
        return cls(state.enabled, state.rollout, dict(state.variant_weights))

    def shares(self) -> Shares:
        percent = {name: _percent(weight) for name, weight in self.weights.items()}
        return shares(self.rollout, percent)


class _AuditedController(abc.ABC):
    """The commands, shared: check the input, read, change what differs, audit, timeline.

    ``evidence``, when set, is asked before a change that puts orders on instant where
    none were (:func:`~strangler.rollout.stage.goes_live`); unless the command says
    ``no_evidence``, a verdict that does not pass refuses the change
    (:class:`~strangler.exceptions.EvidenceRequired`). Kill and enable are never gated.
    ``timeline``, when set, gets every change after the audit log
    (:func:`record_on_timeline`). ``gate_decision`` is for the rollout gate's own changes.
    """

    mode: ClassVar[str]

    def __init__(
        self, flag_name: str, audit_log: Path, timeline: TimelineRecorder | None = None
    ) -> None:
        self.flag_name = flag_name
        self.audit = AuditLog(audit_log)
        self.evidence: Callable[[], EvidenceCheck] | None = None
        self.timeline = timeline

    def show(self) -> RolloutState:
        """The flag's current state."""
        return self._read()

    def set_percentage(
        self,
        pct: int,
        *,
        actor: str,
        reason: str = "",
        no_evidence: bool = False,
        gate_decision: str | None = None,
    ) -> RolloutChange:
        """Set the rollout percentage (0..100); users already in the rollout stay in it."""
        rollout = _checked_percentage(pct)
        return self._change(
            "set_percentage",
            actor,
            reason,
            lambda t: t._replace(rollout=rollout),
            no_evidence=no_evidence,
            gate_decision=gate_decision,
        )

    def kill(
        self, *, actor: str, reason: str = "", gate_decision: str | None = None
    ) -> RolloutChange:
        """Disable the flag: every new order goes to legacy at once."""
        return self._change(
            "kill", actor, reason, lambda t: t._replace(enabled=False), gate_decision=gate_decision
        )

    def enable(self, *, actor: str, reason: str = "") -> RolloutChange:
        """Enable the flag again, at the rollout percentage it had."""
        return self._change("enable", actor, reason, lambda t: t._replace(enabled=True))

    def set_variants(
        self,
        weights: Mapping[str, int],
        *,
        actor: str,
        reason: str = "",
        no_evidence: bool = False,
        gate_decision: str | None = None,
    ) -> RolloutChange:
        """Split the rollout between variants, in percent adding up to 100.

        Routed variants left out get weight 0.
        """
        per_mille = _per_mille(checked_weights(weights))
        return self._change(
            "set_variants",
            actor,
            reason,
            lambda t: t._replace(weights=per_mille),
            no_evidence=no_evidence,
            gate_decision=gate_decision,
        )

    def set_stage(
        self,
        stage: Stage,
        *,
        actor: str,
        reason: str = "",
        percent: int | None = None,
        shadow_share: int = DEFAULT_LIVE_SHADOW_SHARE,
        no_evidence: bool = False,
    ) -> RolloutChange:
        """Move to a migration stage: its rollout and weights in one change (see rollout/stage.py).

        ``percent`` is the share shadowed (``shadow``) or on instant (``live``).
        """
        try:
            shape = stage_shape(Stage(stage), percent=percent, shadow_share=shadow_share)
        except ValueError as exc:
            raise RolloutError(str(exc)) from exc
        per_mille = _per_mille(shape.variants)
        return self._change(
            "set_stage",
            actor,
            reason,
            lambda t: t._replace(rollout=shape.rollout, weights=per_mille),
            no_evidence=no_evidence,
        )

    def note(self, gate_decision: str, *, actor: str, reason: str) -> RolloutChange:
        """Audit a gate decision that changes nothing (hold, fail) and put it on the timeline."""
        return self._change(
            f"gate_{gate_decision}", actor, reason, lambda t: t, gate_decision=gate_decision
        )

    def _change(
        self,
        action: str,
        actor: str,
        reason: str,
        target_of: Callable[[_Target], _Target],
        *,
        no_evidence: bool = False,
        gate_decision: str | None = None,
    ) -> RolloutChange:
        if not isinstance(actor, str) or not actor.strip():
            raise RolloutError("a rollout change needs an actor (who is making it)")
        if not isinstance(reason, str):
            raise RolloutError(f"the reason must be text, got {reason!r}")
        check_audit_text("actor", actor)
        check_audit_text("reason", reason)
        with self._locked():
            before = self._read()
            target = target_of(_Target.of(before))
            # Judged on rollout and weights alone: enabling again after a kill is not gated.
            live = goes_live(_Target.of(before).shares(), target.shares())
            if live and not no_evidence:
                self._require_evidence()
            if target != _Target.of(before):
                self._write(before, target)
                after = self._read()
            else:
                after = before
            change = RolloutChange(
                action,
                actor.strip(),
                reason,
                before,
                after,
                no_evidence=live and no_evidence,
                gate_decision=gate_decision,
            )
            self.audit.append(change)
        # Outside the flag lock: a slow ledger must not hold up the next change.
        return record_on_timeline(self.timeline, change)

    def _require_evidence(self) -> None:
        if self.evidence is None:
            return
        check = self.evidence()
        if not check.passes:
            raise EvidenceRequired(check.why)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    @abc.abstractmethod
    def _read(self) -> RolloutState:
        """The flag's state where this controller keeps it."""

    @abc.abstractmethod
    def _write(self, before: RolloutState, target: _Target) -> None:
        """Change the flag from ``before`` to ``target``."""


class FileRolloutController(_AuditedController):
    """Embedded mode: the flag file is the truth; changes rewrite it atomically.

    A lock file (next to the audit log) serialises concurrent changes.
    """

    mode = "embedded"

    def __init__(
        self,
        flags_file: Path,
        audit_log: Path,
        *,
        flag_name: str = FLAG_NAME,
        lock_file: Path | None = None,
        timeline: TimelineRecorder | None = None,
    ) -> None:
        super().__init__(flag_name, audit_log, timeline)
        self.flags_file = flags_file
        self.lock_file = lock_file or audit_log.parent / "rollout.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:
            deadline = time.monotonic() + _LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RolloutError(
                            f"another rollout change holds {self.lock_file}; try again"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _document(self) -> dict[str, Any]:
        try:
            text = self.flags_file.read_text(encoding="utf-8")
            return load_flag_document(text, self.flag_name, source=str(self.flags_file))
        except OSError as exc:
            raise RolloutError(
                f"cannot read the flag file {self.flags_file}: {exc.strerror}; "
                "set STRANGLER_FLAGS_FILE to the flag file"
            ) from exc
        except FlagFileError as exc:
            raise RolloutError(
                f"{exc}. Fix the file (or restore it from git) before changing the rollout"
            ) from exc

    def _read(self) -> RolloutState:
        definition = read_flag(self._document(), self.flag_name)
        if definition is None:  # pragma: no cover - load_flag_document checked it is there
            raise RolloutError(f"{self.flags_file} has no flag {self.flag_name!r}")
        return RolloutState(
            flag=self.flag_name,
            mode=self.mode,
            source=str(self.flags_file),
            enabled=definition.enabled,
            rollout=definition.rollout,
            variant_weights=definition.variant_weights,
            revision=definition.revision,
        )

    def _write(self, before: RolloutState, target: _Target) -> None:
        document = self._document()
        feature = find_feature(document, self.flag_name)
        strategy = rollout_strategy(feature) if feature else None
        if feature is None or strategy is None:  # pragma: no cover - validated by _document
            raise RolloutError(f"{self.flags_file}: the flag has no rollout strategy")
        current = read_flag(document, self.flag_name)
        if current is None or current.revision != before.revision:
            raise RolloutError(
                f"{self.flags_file} was edited while this change was being made; try again"
            )
        feature["enabled"] = target.enabled
        strategy["parameters"]["rollout"] = str(target.rollout)
        strategy["variants"] = _file_variants(strategy["variants"], target.weights)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        load_flag_document(text, self.flag_name, source=f"the new {self.flags_file}")
        _atomic_write(self.flags_file, text)


class UnleashRolloutController(_AuditedController):
    """Server mode: changes go through the Unleash Admin API to the flag's environment.

    The flag must have exactly one active ``flexibleRollout`` strategy there.
    """

    mode = "server"

    def __init__(
        self,
        admin: UnleashAdminClient,
        audit_log: Path,
        *,
        flag_name: str = FLAG_NAME,
        timeline: TimelineRecorder | None = None,
    ) -> None:
        super().__init__(flag_name, audit_log, timeline)
        self.admin = admin
        self._strategy_id = ""

    def push(self, flags_file: Path) -> bool:
        """Create the flag on the server from the flag file; False when it already exists.

        A set-up step, not a rollout change: an existing flag is left as it is (Unleash's
        event log records the creation). Raises RolloutError for a file that fails
        validation.
        """
        try:
            text = flags_file.read_text(encoding="utf-8")
            document = load_flag_document(text, self.flag_name, source=str(flags_file))
        except OSError as exc:
            raise RolloutError(f"cannot read the flag file {flags_file}: {exc.strerror}") from exc
        except FlagFileError as exc:
            raise RolloutError(str(exc)) from exc
        feature = find_feature(document, self.flag_name)
        if feature is None:  # pragma: no cover - load_flag_document checked it is there
            raise RolloutError(f"{flags_file} has no flag {self.flag_name!r}")
        strategies = [
            {**strategy, "variants": _server_variants({v["name"]: v["weight"] for v in variants})}
            if (variants := strategy.get("variants"))
            else strategy
            for strategy in feature["strategies"]
        ]
        return self.admin.create_flag({**feature, "strategies": strategies})

    def _read(self) -> RolloutState:
        environment = self.admin.feature_environment(self.flag_name)
        rollouts = [s for s in environment.strategies if s.get("name") == "flexibleRollout"]
        if len(rollouts) != 1:
            raise UnleashAdminError(
                f"flag {self.flag_name!r} has {len(rollouts)} active flexibleRollout strategies "
                f"in environment {environment.environment!r}; strangler moves exactly one: "
                "merge them in the Unleash UI (or create the flag with `strangler rollout push`)"
            )
        self._strategy_id = str(rollouts[0].get("id", ""))
        feature = {"name": self.flag_name, "enabled": environment.enabled, "strategies": rollouts}
        definition = read_flag({"features": [feature]}, self.flag_name)
        if definition is None:  # pragma: no cover - the feature was built just above
            raise UnleashAdminError(f"flag {self.flag_name!r} could not be read")
        return RolloutState(
            flag=self.flag_name,
            mode=self.mode,
            source=(
                f"{self.admin.api_url} project={self.admin.project} "
                f"environment={self.admin.environment}"
            ),
            enabled=definition.enabled,
            rollout=definition.rollout,
            variant_weights=definition.variant_weights,
            revision=definition.revision,
        )

    def _write(self, before: RolloutState, target: _Target) -> None:
        operations: list[dict[str, Any]] = []
        if target.rollout != before.rollout:
            operations.append(
                {"op": "replace", "path": "/parameters/rollout", "value": str(target.rollout)}
            )
        if dict(target.weights) != dict(before.variant_weights):
            operations.append(
                {"op": "replace", "path": "/variants", "value": _server_variants(target.weights)}
            )
        if operations:
            self.admin.patch_strategy(self.flag_name, self._strategy_id, operations)
        if target.enabled != before.enabled:
            self.admin.set_enabled(self.flag_name, target.enabled)


def rollout_controller_from_settings(
    settings: Settings,
    *,
    session: requests.Session | None = None,
    timeline: TimelineRecorder | None = None,
) -> FileRolloutController | UnleashRolloutController:
    """The controller the settings ask for: server mode when STRANGLER_UNLEASH_URL is set.

    ``timeline`` is where its changes go on the ledger (none: the audit log only).
    Raises ConfigurationError when server mode lacks its admin token.
    """
    if not settings.server_mode:
        return FileRolloutController(
            settings.flags_file, settings.audit_log, flag_name=settings.flag_name, timeline=timeline
        )
    if not settings.unleash_admin_token:
        raise ConfigurationError(
            "STRANGLER_UNLEASH_ADMIN_TOKEN is required to show or change the rollout in "
            "server mode (STRANGLER_UNLEASH_URL is set); use an Unleash Admin API token"
        )
    assert settings.unleash_url is not None
    # requests loads with server mode only: file mode (the default) never needs it.
    from strangler.rollout.unleash_admin import UnleashAdminClient  # noqa: PLC0415

    admin = UnleashAdminClient(
        settings.unleash_url,
        settings.unleash_admin_token,
        project=settings.unleash_project,
        environment=settings.unleash_environment,
        session=session,
    )
    return UnleashRolloutController(
        admin, settings.audit_log, flag_name=settings.flag_name, timeline=timeline
    )


def check_audit_text(name: str, text: str) -> str:
    """Return ``text`` when the audit log and the ledger can keep it; else RolloutError.

    Checked before anything changes, so a change is refused whole rather than half made.
    """
    bad = _BAD_AUDIT_CHARS.search(text)
    if bad is not None:
        raise RolloutError(
            f"the {name} must not contain control characters or lone UTF-16 surrogates, "
            f"found {bad.group()!r} at position {bad.start()}"
        )
    return text


def _checked_percentage(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RolloutError(
            f"rollout percentage must be a whole number from 0 to 100, got {value!r}"
        )
    if not 0 <= value <= 100:
        raise RolloutError(f"rollout percentage must be between 0 and 100, got {value}")
    return value


def checked_weights(weights: Mapping[str, object]) -> dict[str, int]:
    """Variant weights in whole percent, checked: RolloutError for an empty mapping, an
    unknown variant, a weight outside 0..100 or weights that do not add up to 100."""
    if not weights:
        raise RolloutError("give at least one variant weight, such as instant=70,shadow=30")
    checked: dict[str, int] = {}
    for name, weight in weights.items():
        if name not in ROUTED_VARIANTS:
            raise RolloutError(
                f"unknown variant {name!r}: the variants are {', '.join(ROUTED_VARIANTS)}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise RolloutError(
                f"variant {name!r}: weight must be a whole percentage 0..100, got {weight!r}"
            )
        checked[name] = weight
    total = sum(checked.values())
    if total != 100:
        raise RolloutError(
            f"variant weights must add up to 100, got {total} "
            f"({', '.join(f'{n}={w}' for n, w in checked.items())})"
        )
    return checked


def _per_mille(weights: Mapping[str, int]) -> dict[str, int]:
    return {name: weights.get(name, 0) * _PER_MILLE for name in ROUTED_VARIANTS}


def _file_variants(existing: list[dict[str, Any]], weights: Mapping[str, int]) -> list[Any]:
    by_name = {variant.get("name"): variant for variant in existing}
    variants = []
    for name, weight in weights.items():
        variant = dict(by_name.get(name) or _new_variant(name))
        variant["weight"] = weight
        variants.append(variant)
    return variants


def _server_variants(weights: Mapping[str, int]) -> list[dict[str, Any]]:
    # Unleash wants at least one "variable" variant (it gets what the fixed ones leave);
    # with weights adding up to 1000 that is exactly its own weight.
    names = list(weights)
    return [
        {
            **_new_variant(name),
            "weight": weights[name],
            "weightType": "variable" if name == names[-1] else "fix",
        }
        for name in names
    ]


def _new_variant(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "weight": 0,
        "stickiness": "userId",
        "payload": {"type": "string", "value": name},
    }


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temp file in the same folder, fsync, rename, fsync."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _percent(per_mille: int) -> int | float:
    return per_mille // _PER_MILLE if per_mille % _PER_MILLE == 0 else per_mille / _PER_MILLE
