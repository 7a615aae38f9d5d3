"""Comparison settings as configuration, not code: ignore rules, tolerances, age, sample.

Built from Settings (``STRANGLER_COMPARE_*``, ``STRANGLER_NOISE_SAMPLE``, or the same
names in the TOML file); every error names the setting and the entry that is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from strangler.exceptions import ConfigurationError

if TYPE_CHECKING:
    from strangler.settings import Settings

__all__ = ["CompareConfig", "StepRules"]

_NAME = re.compile(r"[a-z_][a-z0-9_]*")
DEFAULT_MAX_AGE_S = 3600.0
DEFAULT_NOISE_SAMPLE = 0.05


@dataclass(frozen=True, slots=True)
class StepRules:
    """The rules for one step: fields to ignore and absolute tolerances per numeric field."""

    ignored: frozenset[str] = frozenset()
    tolerances: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class CompareConfig:
    """How orders are compared.

    ``ignore`` holds ``step`` (the whole step) or ``step.field`` entries; ``tolerances``
    maps ``step.field`` to the largest absolute difference still counted as equal.
    ``max_age_s``: an order not comparable this long after routing is counted as not
    compared. ``noise_sample``: the share of legacy-path orders dry-run through legacy's
    per-order API for the noise baseline (0 to 1).
    """

    ignore: frozenset[str] = frozenset()
    tolerances: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    max_age_s: float = DEFAULT_MAX_AGE_S
    noise_sample: float = DEFAULT_NOISE_SAMPLE

    def __post_init__(self) -> None:
        for entry in self.ignore:
            _check_key("STRANGLER_COMPARE_IGNORE", entry, field_required=False)
        for key, tolerance in self.tolerances.items():
            _check_key("STRANGLER_COMPARE_TOLERANCES", key, field_required=True)
            if not math.isfinite(tolerance) or tolerance < 0:
                raise ConfigurationError(
                    f"STRANGLER_COMPARE_TOLERANCES: {key!r} needs a tolerance of 0 or more, "
                    f"got {tolerance!r}"
                )
        if not math.isfinite(self.max_age_s) or self.max_age_s <= 0:
            raise ConfigurationError(
                f"STRANGLER_COMPARE_MAX_AGE_S must be above 0, got {self.max_age_s!r}"
            )
        if not 0.0 <= self.noise_sample <= 1.0:
            raise ConfigurationError(
                f"STRANGLER_NOISE_SAMPLE must be between 0 and 1, got {self.noise_sample!r}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> CompareConfig:
        """Parse the compare settings; raises ConfigurationError naming the bad entry."""
        return cls(
            ignore=frozenset(settings.compare_ignore),
            tolerances=parse_tolerances(settings.compare_tolerances),
            max_age_s=float(settings.compare_max_age_s),
            noise_sample=settings.noise_sample,
        )

    def skips(self, step: str) -> bool:
        """True when the whole step is ignored."""
        return step in self.ignore

    def rules_for(self, step: str) -> StepRules:
        """The ignore rules and tolerances of ``step``."""
        prefix = f"{step}."
        return StepRules(
            ignored=frozenset(e[len(prefix) :] for e in self.ignore if e.startswith(prefix)),
            tolerances=MappingProxyType(
                {k[len(prefix) :]: v for k, v in self.tolerances.items() if k.startswith(prefix)}
            ),
        )


def parse_tolerances(entries: Iterable[str]) -> Mapping[str, float]:
    """``["fulfill.voucher_count=1"]`` -> ``{"fulfill.voucher_count": 1.0}``.

    Raises ConfigurationError naming the entry that is not ``step.field=number``.
    """
    tolerances: dict[str, float] = {}
    for entry in entries:
        key, sep, number = entry.partition("=")
        try:
            if not sep:
                raise ValueError(entry)
            tolerances[key.strip()] = float(number)
        except ValueError:
            raise ConfigurationError(
                f"STRANGLER_COMPARE_TOLERANCES: {entry!r} must look like step.field=NUMBER, "
                "e.g. fulfill.voucher_count=1"
            ) from None
    return MappingProxyType(tolerances)


def _check_key(setting: str, key: str, *, field_required: bool) -> None:
    parts = key.split(".")
    shape_ok = len(parts) == 2 if field_required else len(parts) in (1, 2)
    if not shape_ok or not all(_NAME.fullmatch(part) for part in parts):
        form = "step.field" if field_required else "step or step.field"
        raise ConfigurationError(
            f"{setting}: {key!r} is not {form} (lower-case names, e.g. fraud_scan.reason)"
        )
