"""The flag-file model: the ``city_orders_instant_processing`` flag as reviewed data.

Pure: parses and validates Unleash client-API JSON and reads the routing state out of it,
with no SDK and no IO. Shared by the flag sources (:mod:`strangler.flags.sources`) and
rollout control (:mod:`strangler.rollout.controller`), so file-mode rollout never loads
UnleashClient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from strangler.exceptions import FlagFileError

__all__ = [
    "APP_NAME",
    "FLAG_NAME",
    "ROUTED_VARIANTS",
    "WEIGHT_TOTAL",
    "FlagDefinition",
    "find_feature",
    "flag_revision",
    "load_flag_document",
    "read_flag",
    "rollout_strategy",
]

FLAG_NAME = "city_orders_instant_processing"
APP_NAME = "strangler"
ROUTED_VARIANTS = ("instant", "shadow")
WEIGHT_TOTAL = 1000  # Unleash variant weights are per mille
_ROLLOUT_STRATEGY = "flexibleRollout"
_STICKINESS = "userId"


@dataclass(frozen=True, slots=True)
class FlagDefinition:
    """The routing state of the flag, as a flag file or an Unleash server defines it.

    ``variant_weights`` are per mille, as Unleash stores them (1000 = every order in the
    rollout); ``revision`` is a content hash of what decides routing (see
    :func:`flag_revision`).
    """

    name: str
    enabled: bool
    rollout: int
    variant_weights: Mapping[str, int]
    revision: str


def load_flag_document(text: str, flag_name: str = FLAG_NAME, *, source: str) -> dict[str, Any]:
    """Parse and validate a flag file (Unleash client-API JSON) and return the document.

    Raises FlagFileError naming ``source``, the problem and how to fix it. Validation is
    strict about the one flag strangler routes by: exactly one ``flexibleRollout``
    strategy with ``stickiness: userId`` and ``groupId`` = the flag name, a rollout of
    0..100, and variants named ``instant``/``shadow`` whose payload names the path and
    whose weights add up to 1000.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FlagFileError(source, f"is not valid JSON ({exc})") from exc
    try:
        return _validated(document, flag_name)
    except ValueError as exc:
        raise FlagFileError(source, str(exc)) from None


def read_flag(document: Mapping[str, Any], flag_name: str = FLAG_NAME) -> FlagDefinition | None:
    """The flag's routing state in a features document, or None when the flag is absent.

    Lenient, so it also reads what an Unleash server sends: the rollout is the first
    ``flexibleRollout`` strategy's (100 for a flag with no strategies, 0 for other shapes).
    """
    feature = find_feature(document, flag_name)
    if feature is None:
        return None
    strategy = rollout_strategy(feature)
    if strategy is not None:
        rollout = _as_int(strategy.get("parameters", {}).get("rollout"), default=0)
        variants = strategy.get("variants") or []
    else:
        rollout = 0 if feature.get("strategies") else 100
        variants = []
    weights = {
        str(variant.get("name")): _as_int(variant.get("weight"), default=0)
        for variant in variants
        if isinstance(variant, Mapping)
    }
    return FlagDefinition(
        name=flag_name,
        enabled=feature.get("enabled") is True,
        rollout=rollout,
        variant_weights=MappingProxyType(weights),
        revision=flag_revision(feature),
    )


def find_feature(document: Mapping[str, Any], flag_name: str) -> dict[str, Any] | None:
    """The feature object named ``flag_name`` in a features document, if there is one."""
    features = document.get("features")
    if not isinstance(features, list):
        return None
    for feature in features:
        if isinstance(feature, dict) and feature.get("name") == flag_name:
            return feature
    return None


def rollout_strategy(feature: Mapping[str, Any]) -> dict[str, Any] | None:
    """The feature's first ``flexibleRollout`` strategy, the one rollout control moves."""
    for strategy in feature.get("strategies") or []:
        if isinstance(strategy, dict) and strategy.get("name") == _ROLLOUT_STRATEGY:
            return strategy
    return None


def flag_revision(feature: Mapping[str, Any]) -> str:
    """A 12-hex-digit content hash of what decides routing: enabled and the strategies.

    Only the fields that change evaluation count (strategy name, parameters, constraints,
    variant names, weights, stickiness and payloads), so the flag file and an Unleash
    server holding the same rollout give the same revision.
    """
    projection = {
        "enabled": feature.get("enabled") is True,
        "strategies": [
            _strategy_projection(strategy)
            for strategy in feature.get("strategies") or []
            if isinstance(strategy, Mapping)
        ],
    }
    canonical = json.dumps(projection, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _strategy_projection(strategy: Mapping[str, Any]) -> dict[str, Any]:
    parameters = strategy.get("parameters") or {}
    return {
        "name": strategy.get("name"),
        "parameters": {str(k): str(v) for k, v in parameters.items()},
        "constraints": [
            {k: v for k, v in constraint.items() if v not in (None, False, "", [])}
            for constraint in strategy.get("constraints") or []
            if isinstance(constraint, Mapping)
        ],
        "variants": [
            {
                "name": variant.get("name"),
                "weight": variant.get("weight"),
                "stickiness": variant.get("stickiness"),
                "payload": variant.get("payload"),
            }
            for variant in strategy.get("variants") or []
            if isinstance(variant, Mapping)
        ],
    }


def _validated(document: Any, flag_name: str) -> dict[str, Any]:
    top = _object(document, "the file must be a JSON object with a `features` list")
    _list(top.get("features"), "needs a `features` list (the Unleash /api/client/features format)")
    feature = find_feature(top, flag_name)
    if feature is None:
        raise ValueError(f"has no feature named {flag_name!r}; add it back")
    if not isinstance(feature.get("enabled"), bool):
        raise ValueError(f"{flag_name}: `enabled` must be true or false")
    strategies = _list(feature.get("strategies"), f"{flag_name}: `strategies` must be a list")
    if len(strategies) != 1 or rollout_strategy(feature) is None:
        names = [s.get("name") if isinstance(s, dict) else s for s in strategies]
        raise ValueError(
            f"{flag_name}: needs exactly one strategy, a {_ROLLOUT_STRATEGY!r} one (found {names})"
        )
    _validate_strategy(strategies[0], flag_name)
    return top


def _validate_strategy(strategy: dict[str, Any], flag_name: str) -> None:
    parameters = _object(
        strategy.get("parameters"), f"{flag_name}: the strategy needs `parameters`"
    )
    rollout = parameters.get("rollout")
    if not 0 <= _as_int(rollout, default=-1) <= 100:
        raise ValueError(f"{flag_name}: `rollout` must be a whole number 0..100, got {rollout!r}")
    if parameters.get("stickiness") != _STICKINESS:
        raise ValueError(
            f"{flag_name}: `stickiness` must be {_STICKINESS!r} so each user keeps their path, "
            f"got {parameters.get('stickiness')!r}"
        )
    if parameters.get("groupId") != flag_name:
        raise ValueError(
            f"{flag_name}: `groupId` must be {flag_name!r} so raising the rollout keeps the users "
            f"already in it, got {parameters.get('groupId')!r}"
        )
    _list(strategy.get("constraints", []), f"{flag_name}: `constraints` must be a list")
    variants = _list(
        strategy.get("variants"),
        f"{flag_name}: the strategy needs `variants` naming the path: "
        + ", ".join(ROUTED_VARIANTS),
    )
    weights = dict(_validate_variant(variant, flag_name) for variant in variants)
    if len(weights) != len(variants):
        raise ValueError(f"{flag_name}: variant names must not repeat")
    if not weights or sum(weights.values()) != WEIGHT_TOTAL:
        raise ValueError(
            f"{flag_name}: variant weights must add up to {WEIGHT_TOTAL} (per mille), "
            f"got {sum(weights.values())}"
        )


def _validate_variant(variant: Any, flag_name: str) -> tuple[str, int]:
    fields = _object(variant, f"{flag_name}: each variant must be an object")
    name = fields.get("name")
    if name not in ROUTED_VARIANTS:
        raise ValueError(
            f"{flag_name}: variant names must be {' or '.join(ROUTED_VARIANTS)}, got {name!r}"
        )
    weight = fields.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= WEIGHT_TOTAL:
        raise ValueError(
            f"{flag_name}: variant {name!r}: `weight` must be an integer 0..{WEIGHT_TOTAL}, "
            f"got {weight!r}"
        )
    if fields.get("stickiness") != _STICKINESS:
        raise ValueError(
            f"{flag_name}: variant {name!r}: `stickiness` must be {_STICKINESS!r}, "
            f"got {fields.get('stickiness')!r}"
        )
    if fields.get("payload") != {"type": "string", "value": name}:
        raise ValueError(
            f"{flag_name}: variant {name!r}: `payload` must be "
            f'{{"type": "string", "value": "{name}"}}, got {fields.get("payload")!r}'
        )
    return str(name), weight


def _object(value: Any, problem: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(problem)
    return value


def _list(value: Any, problem: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(problem)
    return value


def _as_int(value: Any, *, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default
