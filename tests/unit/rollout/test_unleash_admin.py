"""UnleashAdminClient and UnleashRolloutController against a stubbed Admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from strangler.exceptions import RolloutError, UnleashAdminError
from strangler.flags import FLAG_NAME
from strangler.rollout.controller import UnleashRolloutController
from strangler.rollout.stage import Stage
from strangler.rollout.unleash_admin import UnleashAdminClient

API = "http://unleash.test/api"
FEATURE = f"{API}/admin/projects/default/features/{FLAG_NAME}"
ENV = f"{FEATURE}/environments/development"
STRATEGY_ID = "3f1c"


def _feature(*, enabled: bool = True, rollout: str = "10", extra: list[Any] | None = None) -> Any:
    strategy = {
        "id": STRATEGY_ID,
        "name": "flexibleRollout",
        "constraints": [],
        "parameters": {"rollout": rollout, "stickiness": "userId", "groupId": FLAG_NAME},
        "variants": [
            {
                "name": "instant",
                "weight": 1000,
                "weightType": "variable",
                "stickiness": "userId",
                "payload": {"type": "string", "value": "instant"},
            }
        ],
        "disabled": False,
        "segments": [],
    }
    disabled = {**strategy, "id": "old", "disabled": True}
    return {
        "name": FLAG_NAME,
        "environments": [
            {"name": "production", "enabled": False, "strategies": []},
            {
                "name": "development",
                "enabled": enabled,
                "strategies": [strategy, disabled, *(extra or [])],
            },
        ],
    }


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """The stubbed Admin API; tests register what they expect."""
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def admin() -> UnleashAdminClient:
    """An admin client with fast retries."""
    return UnleashAdminClient(API + "/", "*:*.admin", backoff_s=0.0)


def test_feature_environment_reads_active_strategies(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """The configured environment's enabled flag and active strategies are read."""
    api.get(
        FEATURE, json=_feature(), match=[matchers.header_matcher({"Authorization": "*:*.admin"})]
    )
    environment = admin.feature_environment(FLAG_NAME)
    assert (environment.enabled, [s["id"] for s in environment.strategies]) == (True, [STRATEGY_ID])
    assert api.calls[0].request.req_kwargs["timeout"] == 5.0


def test_missing_environment_is_explained(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """A flag without the configured environment names the setting to change."""
    feature = _feature()
    feature["environments"] = feature["environments"][:1]
    api.get(FEATURE, json=feature)
    with pytest.raises(UnleashAdminError, match="STRANGLER_UNLEASH_ENVIRONMENT"):
        admin.feature_environment(FLAG_NAME)


def test_retries_5xx_then_succeeds(api: responses.RequestsMock, admin: UnleashAdminClient) -> None:
    """A 503 is retried (bounded) and the next answer is used."""
    api.get(FEATURE, status=503)
    api.get(FEATURE, json=_feature())
    assert admin.feature_environment(FLAG_NAME).enabled is True
    assert len(api.calls) == 2


def test_gives_up_after_bounded_retries(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """After 1 + 2 tries of 502 the error carries the status and URL."""
    api.get(FEATURE, status=502, body="bad gateway")
    with pytest.raises(UnleashAdminError) as raised:
        admin.feature_environment(FLAG_NAME)
    assert (raised.value.status, raised.value.url, len(api.calls)) == (502, FEATURE, 3)


def test_connection_errors_are_translated(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """requests' errors do not leak: they become UnleashAdminError, with the cause kept."""
    api.get(FEATURE, body=requests.ConnectionError("refused"))
    with pytest.raises(UnleashAdminError, match="did not answer after 3 tries") as raised:
        admin.feature_environment(FLAG_NAME)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    assert raised.value.status is None


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "STRANGLER_UNLEASH_ADMIN_TOKEN"), (404, "STRANGLER_UNLEASH_PROJECT")],
    ids=["unauthorized", "not-found"],
)
def test_refusals_carry_the_message_and_a_hint(
    api: responses.RequestsMock, admin: UnleashAdminClient, status: int, hint: str
) -> None:
    """4xx answers are not retried; the error has Unleash's message and what to check."""
    api.get(FEATURE, status=status, json={"name": "Err", "message": "nope, said Unleash"})
    with pytest.raises(UnleashAdminError, match="nope, said Unleash") as raised:
        admin.feature_environment(FLAG_NAME)
    assert (raised.value.status, hint in str(raised.value), len(api.calls)) == (status, True, 1)


def test_create_flag_creates_feature_strategy_and_enables(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """create_flag posts the feature, its strategies, then switches the environment on."""
    api.post(f"{API}/admin/projects/default/features", json={"name": FLAG_NAME})
    api.post(f"{ENV}/strategies", json={"id": "new"})
    api.post(f"{ENV}/on")
    strategy = {"name": "flexibleRollout", "parameters": {"rollout": "0"}}
    created = admin.create_flag({"name": FLAG_NAME, "enabled": True, "strategies": [strategy]})
    assert created is True
    assert json.loads(api.calls[1].request.body or b"{}") == strategy


def test_create_flag_that_exists_changes_nothing(
    api: responses.RequestsMock, admin: UnleashAdminClient
) -> None:
    """A 409 on creation means the flag exists: False, and no strategy is added."""
    api.post(f"{API}/admin/projects/default/features", status=409, json={"message": "exists"})
    assert admin.create_flag({"name": FLAG_NAME, "strategies": [{"name": "x"}]}) is False
    assert len(api.calls) == 1


@pytest.fixture
def server_controller(admin: UnleashAdminClient, tmp_path: Path) -> UnleashRolloutController:
    """A server-mode controller auditing into tmp_path."""
    return UnleashRolloutController(admin, tmp_path / "audit.jsonl")


def _patched(api: responses.RequestsMock) -> list[Any]:
    patch = next(c for c in api.calls if c.request.method == "PATCH")
    operations: list[Any] = json.loads(patch.request.body or b"[]")
    return operations


def test_set_percentage_patches_the_rollout(
    api: responses.RequestsMock, server_controller: UnleashRolloutController
) -> None:
    """set_percentage sends one JSON-patch for the rollout, re-reads, and audits locally."""
    api.get(FEATURE, json=_feature(rollout="10"))
    api.patch(f"{ENV}/strategies/{STRATEGY_ID}", json={})
    api.get(FEATURE, json=_feature(rollout="35"))
    change = server_controller.set_percentage(35, actor="ana", reason="step")
    assert _patched(api) == [{"op": "replace", "path": "/parameters/rollout", "value": "35"}]
    assert (change.from_rollout, change.to_rollout, change.after.mode) == (10, 35, "server")
    assert [r["action"] for r in server_controller.audit.records()] == ["set_percentage"]


def test_set_variants_marks_one_variable_variant(
    api: responses.RequestsMock, server_controller: UnleashRolloutController
) -> None:
    """Variants go out per mille, all 'fix' but the last, which Unleash requires 'variable'."""
    api.get(FEATURE, json=_feature())
    api.patch(f"{ENV}/strategies/{STRATEGY_ID}", json={})
    api.get(FEATURE, json=_feature())
    server_controller.set_variants({"instant": 70, "shadow": 30}, actor="ana")
    (operation,) = _patched(api)
    assert operation["path"] == "/variants"
    assert [(v["name"], v["weight"], v["weightType"]) for v in operation["value"]] == [
        ("instant", 700, "fix"),
        ("shadow", 300, "variable"),
    ]


def test_set_stage_patches_rollout_and_variants_in_one_request(
    api: responses.RequestsMock, server_controller: UnleashRolloutController
) -> None:
    """stage shadow on the server: one JSON patch for the rollout and the variants."""
    api.get(FEATURE, json=_feature(rollout="0"))
    api.patch(f"{ENV}/strategies/{STRATEGY_ID}", json={})
    api.get(FEATURE, json=_feature(rollout="100"))
    server_controller.set_stage(Stage.SHADOW, actor="ana", reason="compare first")
    rollout, variants = _patched(api)
    assert rollout == {"op": "replace", "path": "/parameters/rollout", "value": "100"}
    assert [(v["name"], v["weight"]) for v in variants["value"]] == [
        ("instant", 0),
        ("shadow", 1000),
    ]
    assert server_controller.audit.records()[-1]["action"] == "set_stage"


@pytest.mark.parametrize(
    ("method", "enabled_before", "endpoint"),
    [("kill", True, "off"), ("enable", False, "on")],
    ids=["kill", "enable"],
)
def test_kill_and_enable_switch_the_environment(
    api: responses.RequestsMock,
    server_controller: UnleashRolloutController,
    method: str,
    enabled_before: bool,
    endpoint: str,
) -> None:
    """kill and enable switch the flag's environment off and on."""
    api.get(FEATURE, json=_feature(enabled=enabled_before))
    api.post(f"{ENV}/{endpoint}")
    api.get(FEATURE, json=_feature(enabled=not enabled_before))
    change = getattr(server_controller, method)(actor="ana", reason="switch")
    assert (change.before.enabled, change.after.enabled) == (enabled_before, not enabled_before)


def test_two_rollout_strategies_are_refused(
    api: responses.RequestsMock, server_controller: UnleashRolloutController
) -> None:
    """A flag with two active flexibleRollout strategies is refused before any write."""
    second = {**_feature()["environments"][1]["strategies"][0], "id": "second"}
    api.get(FEATURE, json=_feature(extra=[second]))
    with pytest.raises(UnleashAdminError, match="2 active flexibleRollout strategies"):
        server_controller.set_percentage(20, actor="ana")
    assert not server_controller.audit.path.exists()


def test_bad_input_makes_no_request(
    api: responses.RequestsMock, server_controller: UnleashRolloutController
) -> None:
    """Input is checked before Unleash is asked anything."""
    with pytest.raises(RolloutError):
        server_controller.set_percentage(150, actor="ana")
    assert len(api.calls) == 0


def test_push_creates_the_flag_from_the_file(
    api: responses.RequestsMock, server_controller: UnleashRolloutController, flag_file: Path
) -> None:
    """push sends the file's flag (its flexibleRollout strategy) to the server."""
    api.post(f"{API}/admin/projects/default/features", json={"name": FLAG_NAME})
    api.post(f"{ENV}/strategies", json={"id": "new"})
    api.post(f"{ENV}/on")
    assert server_controller.push(flag_file) is True
    strategy = json.loads(api.calls[1].request.body or b"{}")
    assert (strategy["name"], strategy["parameters"]["groupId"]) == ("flexibleRollout", FLAG_NAME)
