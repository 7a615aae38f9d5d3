"""Fixtures for the flag tests: flag files in tmp_path, sources closed after each test."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from strangler.flags import FLAG_NAME, EmbeddedFlagSource, find_feature, rollout_strategy
from strangler.orders import OrderNotification
from tests.helpers import REPO_ROOT

SHIPPED_FLAG_FILE = REPO_ROOT / "flags" / f"{FLAG_NAME}.json"
CITIES = ("nyc", "sf", "chicago", "boston", None)


def flag_document(
    *,
    enabled: bool = True,
    rollout: int | str = 0,
    variants: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The shipped flag file with the routing fields changed (weights per mille)."""
    document = json.loads(SHIPPED_FLAG_FILE.read_text())
    feature = find_feature(document, FLAG_NAME)
    assert feature is not None
    strategy = rollout_strategy(feature)
    assert strategy is not None
    feature["enabled"] = enabled
    strategy["parameters"]["rollout"] = str(rollout)
    weights = variants if variants is not None else {"instant": 1000, "shadow": 0}
    template = strategy["variants"][0]
    strategy["variants"] = [
        {
            **copy.deepcopy(template),
            "name": name,
            "weight": weight,
            "payload": {"type": "string", "value": name},
        }
        for name, weight in weights.items()
    ]
    return document


def write_flag(path: Path, document: Mapping[str, Any] | None = None, **routing: Any) -> Path:
    """Write a flag file (the shipped one changed by ``routing``) and return its path."""
    path.write_text(json.dumps(document if document is not None else flag_document(**routing)))
    return path


def make_orders(
    count: int, *, prefix: str = "order", users: int | None = None
) -> list[OrderNotification]:
    """``count`` valid orders; with ``users``, user guids repeat over that many users."""
    return [
        OrderNotification.from_dict(
            {
                "order_id": f"{prefix}-{i}",
                "user_guid": f"user-{i % users if users else i}",
                "unit_id": f"unit-{i % 17}",
                **({"city": city} if (city := CITIES[i % len(CITIES)]) else {}),
            }
        )
        for i in range(count)
    ]


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    """A copy of the shipped flag file in tmp_path."""
    return write_flag(tmp_path / "flag.json", json.loads(SHIPPED_FLAG_FILE.read_text()))


@pytest.fixture
def embedded() -> Iterator[Callable[..., EmbeddedFlagSource]]:
    """Builds EmbeddedFlagSources on a path and closes every one after the test."""
    sources: list[EmbeddedFlagSource] = []

    def build(path: Path, **options: Any) -> EmbeddedFlagSource:
        source = EmbeddedFlagSource(path, **options)
        sources.append(source)
        return source

    yield build
    for source in sources:
        source.close()
