"""The private fast path into the SDK's engine answers as UnleashClient.get_variant does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from strangler.flags import FLAG_NAME, EmbeddedFlagSource, order_context
from strangler.flags._engine import _EngineAsker
from tests.unit.flags.conftest import make_orders, write_flag

Build = Callable[..., EmbeddedFlagSource]


def test_the_installed_sdk_supports_the_fast_path(flag_file: Path, embedded: Build) -> None:
    """The pinned UnleashClient exposes the engine interface, so the fast path is in use."""
    source = embedded(flag_file)
    assert source.client is not None
    assert _EngineAsker.supports(getattr(source.client, "_engine", None)) is True


def test_an_engine_without_the_interface_is_not_supported() -> None:
    """Anything that lacks the engine's C entry points is refused (get_variant is used)."""
    assert (_EngineAsker.supports(None), _EngineAsker.supports(object())) == (False, False)


@pytest.mark.parametrize("fast_path", [True, False], ids=["engine", "sdk"])
def test_both_evaluation_paths_agree_with_the_sdk(
    tmp_path: Path, embedded: Build, fast_path: bool
) -> None:
    """decide() agrees with UnleashClient.get_variant on 2,000 orders, either way it asks."""
    source = embedded(
        write_flag(tmp_path / "f.json", rollout=60, variants={"instant": 650, "shadow": 350}),
        fast_path=fast_path,
    )
    client = source.client
    assert client is not None
    for order in make_orders(2000):
        variant = client.get_variant(FLAG_NAME, order_context(order))
        decision = source.decide(order)
        expected = variant["payload"]["value"] if variant["enabled"] else "legacy"
        assert (decision.path.value, decision.variant) == (expected, variant["name"])
