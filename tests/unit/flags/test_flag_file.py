"""The flag-file model: validation, reading the routing state, the content revision."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from strangler.exceptions import FlagFileError
from strangler.flags import FLAG_NAME, flag_revision, load_flag_document, read_flag
from tests.unit.flags.conftest import SHIPPED_FLAG_FILE, flag_document


def _strategy(document: dict[str, Any]) -> dict[str, Any]:
    strategy: dict[str, Any] = document["features"][0]["strategies"][0]
    return strategy


def test_shipped_flag_file_is_valid_and_routes_nothing() -> None:
    """The shipped file validates and ships shadow-first at rollout 0 (stage off).

    Raising the rollout shadows orders first; nothing reaches instant until a change
    that goes live, which asks for comparison evidence.
    """
    document = load_flag_document(SHIPPED_FLAG_FILE.read_text(), source="shipped")
    definition = read_flag(document)
    assert definition is not None
    assert (definition.enabled, definition.rollout, dict(definition.variant_weights)) == (
        True,
        0,
        {"instant": 0, "shadow": 1000},
    )


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


_FEATURE = "features.0"
_STRATEGY = f"{_FEATURE}.strategies.0"
_VARIANT = f"{_STRATEGY}.variants.0"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(_set("features", {}), "needs a `features` list", id="features-not-list"),
        pytest.param(_set(f"{_FEATURE}.name", "other"), "has no feature named", id="flag-missing"),
        pytest.param(_set(f"{_FEATURE}.enabled", "yes"), "`enabled` must be true", id="enabled"),
        pytest.param(
            _set(f"{_FEATURE}.strategies", []), "needs exactly one strategy", id="no-strategy"
        ),
        pytest.param(
            _set(f"{_STRATEGY}.name", "default"), "needs exactly one strategy", id="other-strategy"
        ),
        pytest.param(_set(f"{_STRATEGY}.parameters.rollout", "150"), "0..100", id="rollout-150"),
        pytest.param(_set(f"{_STRATEGY}.parameters.rollout", "2.5"), "0..100", id="rollout-frac"),
        pytest.param(
            _set(f"{_STRATEGY}.parameters.stickiness", "random"), "`stickiness`", id="stickiness"
        ),
        pytest.param(_set(f"{_STRATEGY}.parameters.groupId", "x"), "`groupId`", id="group-id"),
        pytest.param(_set(f"{_STRATEGY}.variants", []), "variant weights", id="no-variants"),
        pytest.param(_set(f"{_VARIANT}.name", "fast"), "variant names must be", id="variant-name"),
        pytest.param(_set(f"{_VARIANT}.weight", 900), "add up to 1000", id="weights-sum"),
        pytest.param(_set(f"{_VARIANT}.weight", "1000"), "`weight` must be", id="weight-type"),
        pytest.param(
            _set(f"{_VARIANT}.stickiness", "default"), "`stickiness` must be", id="variant-sticky"
        ),
        pytest.param(
            _set(f"{_VARIANT}.payload", {"type": "string", "value": "shadow"}),
            "`payload` must be",
            id="payload-mismatch",
        ),
        pytest.param(
            _set(
                f"{_STRATEGY}.variants.1",
                {
                    "name": "instant",
                    "weight": 0,
                    "stickiness": "userId",
                    "payload": {"type": "string", "value": "instant"},
                },
            ),
            "must not repeat",
            id="repeated",
        ),
    ],
)
def test_invalid_flag_files_are_rejected_with_the_problem(
    change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    """Each way a flag file can be wrong gives a FlagFileError naming the file and problem."""
    document = flag_document()
    change(document)
    with pytest.raises(FlagFileError) as raised:
        load_flag_document(json.dumps(document), source="flags/x.json")
    assert raised.value.path == "flags/x.json"
    assert problem in raised.value.problem


def test_malformed_json_is_a_flag_file_error() -> None:
    """Text that is not JSON is reported as such, with the source."""
    with pytest.raises(FlagFileError, match=r"flag file broken\.json: is not valid JSON"):
        load_flag_document("{nope", source="broken.json")


def test_read_flag_reads_routing_state() -> None:
    """read_flag gives enabled, rollout and per-mille variant weights."""
    definition = read_flag(
        flag_document(enabled=False, rollout=35, variants={"instant": 700, "shadow": 300})
    )
    assert definition is not None
    assert (definition.name, definition.enabled, definition.rollout) == (FLAG_NAME, False, 35)
    assert dict(definition.variant_weights) == {"instant": 700, "shadow": 300}


@pytest.mark.parametrize(
    ("features", "expected_rollout"),
    [
        pytest.param([{"name": FLAG_NAME, "enabled": True, "strategies": []}], 100, id="none"),
        pytest.param(
            [{"name": FLAG_NAME, "enabled": True, "strategies": [{"name": "userWithId"}]}],
            0,
            id="other",
        ),
    ],
)
def test_read_flag_is_lenient_for_server_shapes(
    features: list[dict[str, Any]], expected_rollout: int
) -> None:
    """A server flag without a flexibleRollout strategy still reads, with a nominal rollout."""
    definition = read_flag({"features": features})
    assert definition is not None
    assert (definition.rollout, dict(definition.variant_weights)) == (expected_rollout, {})


def test_read_flag_without_the_flag_is_none() -> None:
    """A document without the flag gives None rather than raising."""
    assert read_flag({"features": [{"name": "other"}]}) is None


def test_revision_follows_routing_fields_only() -> None:
    """The revision changes with the rollout but not with descriptions or server fields."""
    base = flag_document(rollout=10)
    feature = base["features"][0]
    decorated = {**feature, "description": "changed", "project": "p", "stale": True}
    decorated["strategies"] = [
        {**_strategy(base), "id": "abc", "sortOrder": 3, "segments": [], "title": None}
    ]
    moved = flag_document(rollout=11)["features"][0]
    assert flag_revision(feature) == flag_revision(decorated)
    assert flag_revision(feature) != flag_revision(moved)
    assert len(flag_revision(feature)) == 12
