"""Which path an order takes: the ``city_orders_instant_processing`` flag, on the Unleash SDK.

Two FlagSources share one evaluation core (:class:`SdkFlagSource`):

- :class:`EmbeddedFlagSource` reads the flag file with no network at all. The SDK is
  bootstrapped from an in-memory cache fed by the file and runs offline
  (``initialize_client(fetch_toggles=False)``); its reload job asks the cache every second,
  and the cache re-reads the file when its stat changes. A file that fails validation keeps
  the last good definitions and shows in :meth:`SdkFlagSource.status`.
- :class:`UnleashFlagSource` polls an Unleash server every second on the SDK's own thread,
  bootstrapped from the same file, so a cold start with the server down still routes.

``decide`` asks the SDK's Rust engine with a context serialised once per order: the SDK's
``get_variant`` wrapper (context copying, impression-event lookup, dataclass conversion)
costs several times the evaluation itself. It never raises: whatever goes wrong routes the
order to legacy with the reason.

The flag-file model (:func:`load_flag_document`, :func:`read_flag`) is shared with rollout
control in :mod:`strangler.rollout`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path as FilePath
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import structlog
from UnleashClient.cache import BaseCache
from UnleashClient.clients.unleash_client import UnleashClient
from UnleashClient.constants import ETAG, FEATURES_URL
from UnleashClient.utils import InstanceAllowType

from strangler.exceptions import ConfigurationError, FlagError, FlagFileError
from strangler.orders import Decision, OrderNotification, Route
from strangler.protocols import FlagStatus
from strangler.settings import Settings

__all__ = [
    "APP_NAME",
    "FLAG_NAME",
    "ROUTED_VARIANTS",
    "DefinitionsCache",
    "EmbeddedFlagSource",
    "FlagDefinition",
    "SdkFlagSource",
    "UnleashFlagSource",
    "flag_revision",
    "flag_source_from_settings",
    "load_flag_document",
    "offline_unleash_client",
    "read_flag",
]

FLAG_NAME = "city_orders_instant_processing"
APP_NAME = "strangler"
ROUTED_VARIANTS = ("instant", "shadow")
WEIGHT_TOTAL = 1000  # Unleash variant weights are per mille
_ROLLOUT_STRATEGY = "flexibleRollout"
_STICKINESS = "userId"
_EMPTY_STATE = '{"version": 2, "features": []}'
# The SDK never calls this URL in embedded mode (no fetch, registration or metrics);
# `.invalid` is reserved, so an accident could not reach anything either.
_OFFLINE_URL = "http://embedded.unleash.invalid/api"
_MAX_REMEMBERED = 64


def _logger() -> Any:
    # Looked up when used, not at import: log lines are rare, and tests capture them.
    return structlog.get_logger(__name__)


# -- the flag-file model ---------------------------------------------------------------


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


# -- the SDK's cache: where the engine's definitions come from --------------------------


class DefinitionsCache(BaseCache):
    """The SDK's cache, in memory, reporting every load of the definitions.

    The SDK reads the definitions from its cache right before handing them to its engine
    (at bootstrap, on every offline reload, after every fetch), so ``on_load`` sees what
    the engine is about to evaluate with. ``on_load`` must not raise.
    """

    def __init__(
        self, definitions: str | None = None, on_load: Callable[[str], None] | None = None
    ) -> None:
        self._values: dict[str, Any] = {}
        self._on_load = on_load
        self.last_contact: float | None = None
        if definitions is not None:
            self._values[FEATURES_URL] = definitions
            self.bootstrapped = True

    def set(self, key: str, value: Any) -> None:
        """Store one value; a fetched definitions body or ETag counts as server contact."""
        self._values[key] = value
        if key in (FEATURES_URL, ETAG):
            self.last_contact = time.monotonic()

    def mset(self, data: dict[str, Any]) -> None:
        """Store several values (the SDK's bookkeeping at start-up)."""
        self._values.update(data)

    def get(self, key: str, default: Any | None = None) -> Any:
        """A stored value; reading the definitions reports them to ``on_load`` first."""
        value = self._values.get(key, default)
        if key == FEATURES_URL and isinstance(value, str) and self._on_load is not None:
            self._on_load(value)
        return value

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value."""
        return key in self._values

    def destroy(self) -> None:
        """Forget everything (the SDK calls this when the client is destroyed)."""
        self._values.clear()


class _FlagFileCache(DefinitionsCache):
    """A DefinitionsCache fed by the flag file: re-read when its stat changes.

    The stat runs on the SDK's reload thread (once per reload interval), never on
    ``decide``. A file that fails validation leaves the last good definitions in place and
    is reported to ``on_error`` once per version of the file.
    """

    def __init__(
        self,
        path: FilePath,
        flag_name: str,
        *,
        on_load: Callable[[str], None],
        on_error: Callable[[str | None], None],
    ) -> None:
        super().__init__(on_load=on_load)
        self._path = path
        self._flag_name = flag_name
        self._on_error = on_error
        self._signature: tuple[int, ...] | None = None
        self._lock = threading.Lock()
        self._refresh()
        self.bootstrapped = True  # with the last good file, or an empty state

    def get(self, key: str, default: Any | None = None) -> Any:
        """The stored value; the definitions are first refreshed from the file."""
        if key == FEATURES_URL:
            self._refresh()
        return super().get(key, default)

    def _refresh(self) -> None:
        with self._lock:
            try:
                stat = self._path.stat()
            except OSError as exc:
                self._failed((-1,), f"flag file {self._path}: cannot read it ({exc.strerror})")
                return
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if signature == self._signature:
                return
            try:
                text = self._path.read_text(encoding="utf-8")
                load_flag_document(text, self._flag_name, source=str(self._path))
            except (OSError, UnicodeDecodeError) as exc:
                self._failed(signature, f"flag file {self._path}: cannot read it ({exc})")
            except FlagFileError as exc:
                self._failed(signature, str(exc))
            else:
                self._signature = signature
                self._values[FEATURES_URL] = text
                self._on_error(None)

    def _failed(self, signature: tuple[int, ...], problem: str) -> None:
        if signature != self._signature:
            self._signature = signature
            self._values.setdefault(FEATURES_URL, _EMPTY_STATE)
            self._on_error(problem)


def offline_unleash_client(
    cache: DefinitionsCache,
    *,
    app_name: str = APP_NAME,
    environment: str = "development",
    reload_interval_s: int = 1,
) -> UnleashClient:
    """An initialised UnleashClient that never touches the network.

    Bootstrapped from ``cache``; registration, metrics and fetching are off, and the SDK's
    offline reload job re-reads the cache every ``reload_interval_s`` seconds. This is the
    bootstrap path of :class:`EmbeddedFlagSource` (the client-specification tests use it).
    """
    client = UnleashClient(
        url=_OFFLINE_URL,
        app_name=app_name,
        environment=environment,
        instance_id=f"{app_name}-{uuid.uuid4().hex[:8]}",
        refresh_interval=reload_interval_s,
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    client.initialize_client(fetch_toggles=False)
    return client


# -- evaluation -----------------------------------------------------------------------


class _Verdict(NamedTuple):
    """What the engine said about the flag for one context."""

    found: bool
    feature_enabled: bool
    variant: str
    payload: str | None


class _Snapshot:
    """The definitions the engine evaluates with, and the decisions they lead to."""

    __slots__ = ("decisions", "definition", "loaded_at")

    def __init__(self, definition: FlagDefinition | None, loaded_at: datetime | None) -> None:
        self.definition = definition
        self.loaded_at = loaded_at
        self.decisions: dict[_Verdict, Decision] = {}

    @property
    def rollout(self) -> int:
        return self.definition.rollout if self.definition else 0

    @property
    def revision(self) -> str:
        return self.definition.revision if self.definition else "none"

    def decision(self, verdict: _Verdict) -> Decision:
        """The decision a verdict leads to; decisions are immutable, so they are shared."""
        decision = self.decisions.get(verdict)
        if decision is None:
            decision = self._decide(verdict)
            if len(self.decisions) < _MAX_REMEMBERED:
                self.decisions[verdict] = decision
        return decision

    def _decide(self, verdict: _Verdict) -> Decision:
        path = Route.LEGACY
        if self.loaded_at is None:
            reason = "flags_not_loaded"
        elif self.definition is None or not verdict.found:
            reason = "flag_unknown"
        elif not verdict.feature_enabled:
            reason = "flag_disabled" if not self.definition.enabled else "outside_rollout"
        elif verdict.payload in ROUTED_VARIANTS:
            path, reason = Route(verdict.payload), "in_rollout"
        elif verdict.variant == "disabled":
            reason = "no_variant"
        else:
            reason = f"unknown_variant:{verdict.variant}"
        return Decision(path, verdict.variant, self.rollout, self.revision, reason)


class _EngineAsker:
    """Asks the SDK's Rust engine for the flag's variant with a pre-serialised context.

    Calls the engine's C interface the way its own Python binding does, minus the
    per-call overhead the decision does not need; its answers are those of
    ``UnleashClient.get_variant`` (tests/unit/flags compares the two). With
    ``count_usage`` each answer is counted in the engine's metrics, as ``get_variant``
    does, for the SDK to report to the server.
    """

    def __init__(
        self,
        engine: Any,
        flag_name: str,
        static_context: Mapping[str, str],
        *,
        count_usage: bool,
    ) -> None:
        self._engine = engine
        self._count_usage = count_usage
        self._check = engine.lib.check_variant
        self._free = engine.lib.free_response
        self._state = engine.state
        self._handler = engine.custom_strategy_handler
        self._flag_name = flag_name
        self._name = flag_name.encode()
        head = "".join(
            f"{encode_basestring_ascii(k)}:{encode_basestring_ascii(v)},"
            for k, v in static_context.items()
        )
        self._prefix = "{" + head + '"userId":'
        self._verdicts: dict[bytes, _Verdict] = {}

    @classmethod
    def supports(cls, engine: Any) -> bool:
        """Whether ``engine`` has the interface this asker relies on."""
        lib = getattr(engine, "lib", None)
        return (
            all(hasattr(lib, name) for name in ("check_variant", "free_response"))
            and hasattr(engine, "state")
            and hasattr(engine, "custom_strategy_handler")
        )

    def __call__(self, order: OrderNotification) -> _Verdict:
        pointer = self._check(self._state, self._name, self._context(order), self._custom())
        try:
            raw = ctypes.string_at(pointer)
        finally:
            self._free(pointer)
        verdict = self._verdicts.get(raw)
        if verdict is None:
            verdict = _parse_engine_answer(raw)
            if len(self._verdicts) < _MAX_REMEMBERED:
                self._verdicts[raw] = verdict
        if self._count_usage and verdict.found:
            self._engine.count_toggle(self._flag_name, verdict.feature_enabled)
            self._engine.count_variant(self._flag_name, verdict.variant)
        return verdict

    def _context(self, order: OrderNotification) -> bytes:
        city = order.city
        return (
            f"{self._prefix}{encode_basestring_ascii(order.user_guid)},"
            f'"properties":{{"orderId":{encode_basestring_ascii(order.order_id)},'
            f'"unitId":{encode_basestring_ascii(order.unit_id)}'
            + ("}}" if city is None else f',"city":{encode_basestring_ascii(city)}}}}}')
        ).encode("ascii")

    def _custom(self) -> bytes:
        if self._flag_name not in self._handler.strategy_definitions:
            return b"{}"
        # Strangler registers no custom strategies, so each one evaluates to false.
        return json.dumps(self._handler.evaluate_custom_strategies(self._flag_name, {})).encode()


def _parse_engine_answer(raw: bytes) -> _Verdict:
    answer = json.loads(raw)
    status = answer.get("status_code")
    value = answer.get("value")
    if status == "Error":
        raise FlagError(f"the Unleash engine failed: {answer.get('error_message')}")
    if value is None:
        return _Verdict(found=False, feature_enabled=False, variant="disabled", payload=None)
    payload = value.get("payload")
    return _Verdict(
        found=True,
        feature_enabled=bool(value.get("featureEnabled")),
        variant=str(value.get("name", "disabled")),
        payload=payload.get("value") if isinstance(payload, dict) else None,
    )


class _SdkAsker:
    """Asks through ``UnleashClient.get_variant``: the fallback when the engine differs."""

    def __init__(self, client: UnleashClient, flag_name: str) -> None:
        self._client = client
        self._flag_name = flag_name

    def __call__(self, order: OrderNotification) -> _Verdict:
        variant = self._client.get_variant(self._flag_name, order_context(order))
        payload = variant.get("payload")
        return _Verdict(
            found=True,  # get_variant does not say; the snapshot knows whether the flag exists
            feature_enabled=bool(variant.get("feature_enabled")),
            variant=str(variant.get("name", "disabled")),
            payload=payload.get("value") if isinstance(payload, dict) else None,
        )


def order_context(order: OrderNotification) -> dict[str, Any]:
    """The Unleash context of an order: userId = user_guid; orderId, unitId, city."""
    properties = {"orderId": order.order_id, "unitId": order.unit_id}
    if order.city is not None:
        properties["city"] = order.city
    return {"userId": order.user_guid, "properties": properties}


# -- the flag sources -----------------------------------------------------------------


class SdkFlagSource:
    """A FlagSource on the Unleash SDK; subclasses say where the definitions come from.

    Use as a context manager or call :meth:`close`. ``decide`` is thread-safe.
    """

    mode: ClassVar[str]

    def __init__(
        self, flag_name: str, *, environment: str, fast_path: bool, count_usage: bool = False
    ) -> None:
        self._flag_name = flag_name
        self._fast_path = fast_path
        self._count_usage = count_usage
        self._static_context = {"appName": APP_NAME, "environment": environment}
        self._snapshot = _Snapshot(None, None)
        self._loaded_text = ""
        self._problem: str | None = None
        self._last_failure_log = 0.0
        self._client: UnleashClient | None = None
        self._ask: Callable[[OrderNotification], _Verdict] = self._not_started

    def decide(self, order: OrderNotification) -> Decision:
        """The path of one order; never raises (legacy with the reason instead)."""
        snapshot = self._snapshot
        try:
            return snapshot.decision(self._ask(order))
        except Exception as exc:  # the design: a flag check falls back to legacy
            return self._failed(order, snapshot, exc)

    def status(self) -> FlagStatus:
        """Health for readiness: loaded definitions, their revision, the last problem."""
        snapshot = self._snapshot
        return FlagStatus(
            loaded=snapshot.definition is not None,
            mode=self.mode,
            revision=snapshot.revision,
            loaded_at=snapshot.loaded_at,
            last_error=self._current_problem(),
        )

    @property
    def client(self) -> UnleashClient | None:
        """The UnleashClient underneath (None once closed), for benchmarks and diagnostics."""
        return self._client

    def close(self) -> None:
        """Stop the SDK's background jobs; later decisions go to legacy. Idempotent."""
        client, self._client = self._client, None
        self._ask = self._not_started
        if client is not None:
            client.destroy()

    def __enter__(self) -> SdkFlagSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self, client: UnleashClient) -> None:
        self._client = client
        engine = getattr(client, "_engine", None)  # the SDK does not expose its engine
        if self._fast_path and _EngineAsker.supports(engine):
            self._ask = _EngineAsker(
                engine, self._flag_name, self._static_context, count_usage=self._count_usage
            )
            return
        if self._fast_path:
            _logger().warning("flag_engine_fast_path_unavailable", flag=self._flag_name)
        self._ask = _SdkAsker(client, self._flag_name)

    def _on_load(self, text: str) -> None:
        """Called with the definitions the engine is about to take; never raises."""
        if text == self._loaded_text:
            return
        try:
            definition = read_flag(json.loads(text), self._flag_name)
        except ValueError as exc:
            self._report(f"definitions are not valid JSON ({exc}); keeping the last good ones")
            return
        self._loaded_text = text
        previous = self._snapshot.definition
        self._snapshot = _Snapshot(definition, datetime.now(UTC))
        if definition is None:
            _logger().warning("flag_missing_from_definitions", flag=self._flag_name, mode=self.mode)
        elif previous is None or previous.revision != definition.revision:
            _logger().info(
                "flag_definitions_loaded",
                flag=self._flag_name,
                mode=self.mode,
                revision=definition.revision,
                enabled=definition.enabled,
                rollout=definition.rollout,
            )

    def _report(self, problem: str | None) -> None:
        if problem is not None and problem != self._problem:
            _logger().error(
                "flag_definitions_rejected", flag=self._flag_name, mode=self.mode, problem=problem
            )
        self._problem = problem

    def _current_problem(self) -> str | None:
        return self._problem

    def _failed(self, order: OrderNotification, snapshot: _Snapshot, exc: Exception) -> Decision:
        now = time.monotonic()
        if now - self._last_failure_log >= 1.0:  # one line a second, not one per order
            self._last_failure_log = now
            _logger().warning("flag_source_error", order_id=order.order_id, error=repr(exc))
        return Decision(
            Route.LEGACY,
            "disabled",
            snapshot.rollout,
            snapshot.revision,
            f"flag_source_error:{exc}",
        )

    @staticmethod
    def _not_started(_order: OrderNotification) -> _Verdict:
        raise FlagError("the flag source is closed or was never started")


class EmbeddedFlagSource(SdkFlagSource):
    """Flags from the flag file, with no network; edits are picked up within ~1 s.

    ``reload_interval_s`` is how often the SDK's reload job looks at the file (a stat;
    the file is read only when it changed). ``fast_path=False`` evaluates through
    ``UnleashClient.get_variant`` instead of the engine directly (same answers, slower).
    """

    mode = "embedded"

    def __init__(
        self,
        path: FilePath,
        *,
        flag_name: str = FLAG_NAME,
        environment: str = "development",
        reload_interval_s: int = 1,
        fast_path: bool = True,
    ) -> None:
        super().__init__(flag_name, environment=environment, fast_path=fast_path)
        self.path = path
        cache = _FlagFileCache(path, flag_name, on_load=self._on_load, on_error=self._report)
        self._start(
            offline_unleash_client(
                cache, environment=environment, reload_interval_s=reload_interval_s
            )
        )


class UnleashFlagSource(SdkFlagSource):
    """Flags from an Unleash server (client API), bootstrapped from the flag file.

    The SDK starts on a background thread and polls every ``refresh_interval_s`` seconds
    with a ``request_timeout_s`` timeout and ``request_retries`` retries, so a dead server
    never blocks ``decide``; until the first answer, orders route by the bootstrap file.
    ``token`` is a client (backend) API token. With ``report_usage`` the SDK registers
    and sends evaluation metrics, so Unleash shows the flag as used. :meth:`status`
    reports a problem once the server has not answered for ``stale_after_s`` seconds.
    """

    mode = "server"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        bootstrap_file: FilePath | None = None,
        flag_name: str = FLAG_NAME,
        project: str | None = "default",
        environment: str = "development",
        refresh_interval_s: int = 1,
        request_timeout_s: int = 1,
        request_retries: int = 1,
        report_usage: bool = True,
        stale_after_s: float = 5.0,
        fast_path: bool = True,
    ) -> None:
        super().__init__(
            flag_name, environment=environment, fast_path=fast_path, count_usage=report_usage
        )
        self.url = url
        self._stale_after_s = stale_after_s
        self._started = time.monotonic()
        self._cache = DefinitionsCache(self._bootstrap(bootstrap_file), on_load=self._on_load)
        client = UnleashClient(
            url=url,
            app_name=APP_NAME,
            environment=environment,
            instance_id=f"{APP_NAME}-{uuid.uuid4().hex[:8]}",
            refresh_interval=refresh_interval_s,
            request_timeout=request_timeout_s,
            request_retries=request_retries,
            disable_metrics=not report_usage,
            disable_registration=not report_usage,
            custom_headers={"Authorization": token},
            project_name=project,
            cache=self._cache,
            multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
        )
        self._start(client)
        self._init_error: str | None = None
        self._init_thread = threading.Thread(
            target=self._initialize, args=(client,), name="strangler-unleash-init", daemon=True
        )
        self._init_thread.start()
        self._join_timeout = request_timeout_s * (request_retries + 1) * 2 + 1.0

    def close(self) -> None:
        """Stop polling; waits for a start-up fetch in flight (bounded by the timeouts)."""
        self._init_thread.join(self._join_timeout)
        super().close()

    def _bootstrap(self, path: FilePath | None) -> str | None:
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
            load_flag_document(text, self._flag_name, source=str(path))
        except (OSError, UnicodeDecodeError) as exc:
            self._report(f"bootstrap file {path}: cannot read it ({exc}); waiting for the server")
            return None
        except FlagFileError as exc:
            self._report(f"bootstrap {exc}; waiting for the server")
            return None
        return text

    def _initialize(self, client: UnleashClient) -> None:
        try:
            client.initialize_client()
        except Exception as exc:  # reported through status(), never raised
            self._init_error = f"cannot start the Unleash client for {self.url}: {exc}"
            _logger().error("unleash_client_start_failed", url=self.url, error=repr(exc))

    def _current_problem(self) -> str | None:
        if self._init_error is not None:
            return self._init_error
        contact = self._cache.last_contact
        since = contact if contact is not None else self._started
        silent_for = time.monotonic() - since
        if silent_for < self._stale_after_s:
            return self._problem if contact is None else None
        routing = "the last fetched definitions" if contact is not None else "the bootstrap file"
        return f"no answer from {self.url} for {silent_for:.0f}s; routing by {routing}"


def flag_source_from_settings(settings: Settings) -> SdkFlagSource:
    """The FlagSource the settings ask for: server mode when STRANGLER_UNLEASH_URL is set.

    Raises ConfigurationError when server mode lacks its client token.
    """
    if not settings.server_mode:
        return EmbeddedFlagSource(
            settings.flags_file,
            flag_name=settings.flag_name,
            environment=settings.unleash_environment,
        )
    if not settings.unleash_token:
        raise ConfigurationError(
            "STRANGLER_UNLEASH_TOKEN is required when STRANGLER_UNLEASH_URL is set "
            "(an Unleash client/backend API token)"
        )
    assert settings.unleash_url is not None
    return UnleashFlagSource(
        settings.unleash_url,
        settings.unleash_token,
        bootstrap_file=settings.flags_file,
        flag_name=settings.flag_name,
        project=settings.unleash_project,
        environment=settings.unleash_environment,
    )
