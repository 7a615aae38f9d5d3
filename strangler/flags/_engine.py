"""The private fast path into the Unleash SDK's Rust engine (see :class:`_EngineAsker`).

Kept alone with its parity test (tests/unit/flags/test_engine_parity.py): it calls the
engine's C interface, which the SDK does not promise, so every SDK upgrade must pass that
test, and :meth:`_EngineAsker.supports` falls back to ``get_variant`` when it would not.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from strangler.exceptions import FlagError
from strangler.orders import OrderNotification

MAX_REMEMBERED = 64


class _Verdict(NamedTuple):
    """What the engine said about the flag for one context."""

    found: bool
    feature_enabled: bool
    variant: str
    payload: str | None


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
            if len(self._verdicts) < MAX_REMEMBERED:
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
