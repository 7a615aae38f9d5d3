"""The Unleash SDK's cache and an offline client: where the engine's definitions come from."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any

from UnleashClient.cache import BaseCache
from UnleashClient.clients.unleash_client import UnleashClient
from UnleashClient.constants import ETAG, FEATURES_URL
from UnleashClient.utils import InstanceAllowType

from strangler.exceptions import FlagFileError
from strangler.flags.file import APP_NAME, load_flag_document

__all__ = ["DefinitionsCache", "FlagFileCache", "offline_unleash_client"]

_EMPTY_STATE = '{"version": 2, "features": []}'
# The SDK never calls this URL in embedded mode (no fetch, registration or metrics);
# `.invalid` is reserved, so an accident could not reach anything either.
_OFFLINE_URL = "http://embedded.unleash.invalid/api"


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


class FlagFileCache(DefinitionsCache):
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
