"""Stickiness over 10,000 orders: raising the rollout never moves anyone back to legacy.

The rollout is raised the way ops raise it (FileRolloutController.set_percentage on the
flag file) and each step is read by a fresh EmbeddedFlagSource.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from strangler.flags import EmbeddedFlagSource
from strangler.orders import OrderNotification, Route
from strangler.rollout.controller import FileRolloutController
from tests.unit.flags.conftest import make_orders, write_flag

ORDERS = make_orders(10_000)
STEPS = (0, 1, 5, 10, 25, 50, 75, 90, 100)
Build = Callable[..., EmbeddedFlagSource]


@pytest.fixture(scope="module")
def paths_by_step(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Route]]:
    """The path of every order at each rollout step (instant=70, shadow=30)."""
    folder = tmp_path_factory.mktemp("stickiness")
    flags = write_flag(folder / "flag.json", rollout=0)
    controller = FileRolloutController(flags, folder / "audit.jsonl")
    controller.set_variants({"instant": 70, "shadow": 30}, actor="test")
    paths: dict[int, list[Route]] = {}
    for step in STEPS:
        controller.set_percentage(step, actor="test", reason="stickiness")
        with EmbeddedFlagSource(flags) as source:
            paths[step] = [source.decide(order).path for order in ORDERS]
    return paths


@pytest.mark.parametrize(
    ("lower", "higher"), list(itertools.pairwise(STEPS)), ids=lambda pct: f"{pct}%"
)
def test_raising_the_rollout_keeps_everyone_on_their_path(
    paths_by_step: dict[int, list[Route]], lower: int, higher: int
) -> None:
    """An order routed off legacy at a lower rollout keeps its exact path at a higher one."""
    moved = [
        (before, after)
        for before, after in zip(paths_by_step[lower], paths_by_step[higher], strict=True)
        if before is not Route.LEGACY and after is not before
    ]
    assert moved == []


@pytest.mark.parametrize("step", STEPS, ids=lambda pct: f"{pct}%")
def test_enabled_fraction_matches_the_setting(
    paths_by_step: dict[int, list[Route]], step: int
) -> None:
    """The share of orders off legacy is within 1.5 percentage points of the rollout."""
    enabled = sum(path is not Route.LEGACY for path in paths_by_step[step])
    assert abs(100 * enabled / len(ORDERS) - step) <= 1.5


def test_variant_split_matches_the_weights(paths_by_step: dict[int, list[Route]]) -> None:
    """At 100%, instant=70,shadow=30 splits the orders within 1.5 points of 70/30."""
    instant = paths_by_step[100].count(Route.INSTANT)
    assert abs(100 * instant / len(ORDERS) - 70) <= 1.5


def test_same_user_same_path(tmp_path: Path, embedded: Build) -> None:
    """Every order of one user takes that user's path, whatever the order, unit or city."""
    source = embedded(
        write_flag(tmp_path / "f.json", rollout=50, variants={"instant": 500, "shadow": 500})
    )
    by_user: dict[str, set[Route]] = {}
    for order in make_orders(10_000, users=500):
        by_user.setdefault(order.user_guid, set()).add(source.decide(order).path)
    assert {user: paths for user, paths in by_user.items() if len(paths) > 1} == {}
    assert len({next(iter(paths)) for paths in by_user.values()}) == 3


def test_order_fields_other_than_user_do_not_move_a_user(tmp_path: Path, embedded: Build) -> None:
    """Changing order id, unit and city of one user's order never changes its path."""
    source = embedded(write_flag(tmp_path / "f.json", rollout=50))
    for order in ORDERS[:500]:
        twin = OrderNotification.from_dict(
            {"order_id": f"twin-{order.order_id}", "user_guid": order.user_guid, "unit_id": "z"}
        )
        assert source.decide(twin).path is source.decide(order).path
