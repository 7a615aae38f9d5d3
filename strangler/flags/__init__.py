"""Which path an order takes: the ``city_orders_instant_processing`` flag.

- :mod:`strangler.flags.file`: the flag-file model (pure, no SDK), shared with rollout.
- :mod:`strangler.flags.sources`: the FlagSources on the Unleash SDK (embedded, server).
- :mod:`strangler.flags.sdk_cache`: the SDK's cache and an offline client.
- :mod:`strangler.flags._engine`: the private fast path into the SDK's engine.

Names are loaded on first use (PEP 562), so ``from strangler.flags import read_flag``
does not load UnleashClient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strangler._lazy import attribute_loader

if TYPE_CHECKING:
    from strangler.flags.file import (
        APP_NAME,
        FLAG_NAME,
        ROUTED_VARIANTS,
        WEIGHT_TOTAL,
        FlagDefinition,
        find_feature,
        flag_revision,
        load_flag_document,
        read_flag,
        rollout_strategy,
    )
    from strangler.flags.sdk_cache import DefinitionsCache, offline_unleash_client
    from strangler.flags.sources import (
        EmbeddedFlagSource,
        SdkFlagSource,
        UnleashFlagSource,
        flag_source_from_settings,
        order_context,
    )

_FILE = "strangler.flags.file"
_SDK_CACHE = "strangler.flags.sdk_cache"
_SOURCES = "strangler.flags.sources"
_LAZY = {
    "APP_NAME": _FILE,
    "DefinitionsCache": _SDK_CACHE,
    "EmbeddedFlagSource": _SOURCES,
    "FLAG_NAME": _FILE,
    "FlagDefinition": _FILE,
    "ROUTED_VARIANTS": _FILE,
    "SdkFlagSource": _SOURCES,
    "UnleashFlagSource": _SOURCES,
    "WEIGHT_TOTAL": _FILE,
    "find_feature": _FILE,
    "flag_revision": _FILE,
    "flag_source_from_settings": _SOURCES,
    "load_flag_document": _FILE,
    "offline_unleash_client": _SDK_CACHE,
    "order_context": _SOURCES,
    "read_flag": _FILE,
    "rollout_strategy": _FILE,
}

__all__ = [
    "APP_NAME",
    "FLAG_NAME",
    "ROUTED_VARIANTS",
    "WEIGHT_TOTAL",
    "DefinitionsCache",
    "EmbeddedFlagSource",
    "FlagDefinition",
    "SdkFlagSource",
    "UnleashFlagSource",
    "find_feature",
    "flag_revision",
    "flag_source_from_settings",
    "load_flag_document",
    "offline_unleash_client",
    "order_context",
    "read_flag",
    "rollout_strategy",
]


__getattr__ = attribute_loader(__name__, _LAZY)
