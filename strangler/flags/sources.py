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

The flag-file model is :mod:`strangler.flags.file`; the engine fast path is
:mod:`strangler.flags._engine`; the SDK cache is :mod:`strangler.flags.sdk_cache`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Any, ClassVar

import structlog
from UnleashClient.clients.unleash_client import UnleashClient
from UnleashClient.utils import InstanceAllowType

from strangler.exceptions import ConfigurationError, FlagError, FlagFileError
from strangler.flags._engine import MAX_REMEMBERED, _EngineAsker, _Verdict
from strangler.flags.file import (
    APP_NAME,
    FLAG_NAME,
    ROUTED_VARIANTS,
    FlagDefinition,
    load_flag_document,
    read_flag,
)
from strangler.flags.sdk_cache import DefinitionsCache, FlagFileCache, offline_unleash_client
from strangler.orders import Decision, OrderNotification, Route
from strangler.protocols import FlagStatus
from strangler.settings import Settings

__all__ = [
    "EmbeddedFlagSource",
    "SdkFlagSource",
    "UnleashFlagSource",
    "flag_source_from_settings",
    "order_context",
]


def _logger() -> Any:
    # Looked up when used, not at import: log lines are rare, and tests capture them.
    return structlog.get_logger(__name__)


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
            if len(self.decisions) < MAX_REMEMBERED:
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

    def definition(self) -> FlagDefinition | None:
        """The flag's routing state as loaded now (None before the first load), for metrics."""
        return self._snapshot.definition

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
        cache = FlagFileCache(path, flag_name, on_load=self._on_load, on_error=self._report)
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
