"""Against a real Unleash server: `strangler rollout` (a real CLI process) changes the flag
through the Admin API, and a server-mode FlagSource sees each change within 5 s.

The other changes go through the same controller in-process, to keep the suite quick.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import requests

from strangler.flags import FLAG_NAME, UnleashFlagSource
from strangler.orders import OrderNotification, Route
from strangler.rollout.controller import UnleashRolloutController, rollout_controller_from_settings
from strangler.settings import Settings
from tests.helpers import REPO_ROOT, strangler_cmd, wait_until
from tests.integration.unleash_fixture import UnleashServer, running_unleash

pytestmark = [pytest.mark.needs_node, pytest.mark.needs_postgres, pytest.mark.slow]

SHIPPED_FLAG_FILE = REPO_ROOT / "flags" / f"{FLAG_NAME}.json"
SEEN_WITHIN_S = 5.0
ORDERS = [
    OrderNotification.from_dict(
        {"order_id": f"it-{i}", "user_guid": f"user-{i}", "unit_id": f"unit-{i % 7}"}
    )
    for i in range(2000)
]


@pytest.fixture(scope="module")
def unleash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnleashServer]:
    """One Unleash server for these tests, on a fresh database."""
    with running_unleash(tmp_path_factory.mktemp("unleash")) as server:
        yield server


@pytest.fixture(scope="module")
def settings(unleash: UnleashServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Server-mode settings pointing at the test server."""
    return Settings(
        unleash_url=unleash.api_url,
        unleash_token=unleash.client_token,
        unleash_admin_token=unleash.admin_token,
        flags_file=SHIPPED_FLAG_FILE,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="module")
def controller(settings: Settings) -> UnleashRolloutController:
    """The server-mode controller, after creating the flag from the shipped file."""
    built = rollout_controller_from_settings(settings)
    assert isinstance(built, UnleashRolloutController)
    assert built.push(SHIPPED_FLAG_FILE) is True
    return built


@pytest.fixture(scope="module")
def source(
    unleash: UnleashServer, controller: UnleashRolloutController
) -> Iterator[UnleashFlagSource]:
    """A server-mode FlagSource that has fetched the server's definitions."""
    with UnleashFlagSource(
        unleash.api_url, unleash.client_token, bootstrap_file=SHIPPED_FLAG_FILE
    ) as flag_source:
        revision = controller.show().revision
        wait_until(lambda: flag_source.status().revision == revision, SEEN_WITHIN_S, "a fetch")
        yield flag_source


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "STRANGLER_UNLEASH_URL": str(settings.unleash_url),
        "STRANGLER_UNLEASH_ADMIN_TOKEN": str(settings.unleash_admin_token),
        "STRANGLER_FLAGS_FILE": str(settings.flags_file),
        "STRANGLER_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        strangler_cmd("rollout", *args),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def test_cli_set_reaches_a_server_mode_source(
    source: UnleashFlagSource, controller: UnleashRolloutController, settings: Settings
) -> None:
    """`strangler rollout set 35` moves the server's rollout; the source routes by it in 5 s."""
    done = _cli(settings, "set", "35", "--reason", "integration test", "--actor", "ci")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: source.decide(ORDERS[0]).rollout == 35, SEEN_WITHIN_S, "rollout 35")
    state = controller.show()
    off_legacy = sum(source.decide(order).path is not Route.LEGACY for order in ORDERS)
    assert (state.mode, state.rollout) == ("server", 35)
    assert source.decide(ORDERS[0]).flag_revision == state.revision
    assert abs(100 * off_legacy / len(ORDERS) - 35) < 3.5


def test_changes_are_audited_here_and_in_unleash(
    unleash: UnleashServer, controller: UnleashRolloutController
) -> None:
    """The local audit log and Unleash's own event log both record a change."""
    controller.set_percentage(12, actor="ci", reason="audit check")
    last = controller.audit.records()[-1]
    events = requests.get(
        f"{unleash.api_url}/admin/events",
        headers={"Authorization": unleash.admin_token},
        timeout=5,
    ).json()["events"]
    updates = [e for e in events if e["type"] == "feature-strategy-update"]
    assert (last["actor"], last["mode"], last["to"]["rollout"]) == ("ci", "server", 12)
    assert updates[0]["data"]["parameters"]["rollout"] == "12"


def test_kill_and_enable_reach_the_source(
    source: UnleashFlagSource, controller: UnleashRolloutController
) -> None:
    """kill sends every order to legacy within 5 s; enable brings the rollout back."""
    controller.set_percentage(100, actor="ci")
    controller.kill(actor="ci", reason="incident drill")
    wait_until(lambda: source.decide(ORDERS[0]).reason == "flag_disabled", SEEN_WITHIN_S, "kill")
    assert {source.decide(order).path for order in ORDERS[:200]} == {Route.LEGACY}
    controller.enable(actor="ci", reason="drill over")
    wait_until(lambda: source.decide(ORDERS[0]).reason == "in_rollout", SEEN_WITHIN_S, "enable")


def test_variants_reach_the_source(
    source: UnleashFlagSource, controller: UnleashRolloutController
) -> None:
    """instant=0,shadow=100 at 100% puts every order on the shadow path within 5 s."""
    controller.set_percentage(100, actor="ci")
    controller.set_variants({"shadow": 100}, actor="ci", reason="shadow everything")
    wait_until(lambda: source.decide(ORDERS[0]).path is Route.SHADOW, SEEN_WITHIN_S, "shadow")
    assert {source.decide(order).path for order in ORDERS[:200]} == {Route.SHADOW}
    controller.set_variants({"instant": 100}, actor="ci")


def test_raising_the_rollout_on_the_server_keeps_users_on_instant(
    source: UnleashFlagSource, controller: UnleashRolloutController
) -> None:
    """Users on instant at 20% are still on instant after the server moves to 60%."""
    controller.set_variants({"instant": 100}, actor="ci")
    controller.set_percentage(20, actor="ci")
    wait_until(lambda: source.decide(ORDERS[0]).rollout == 20, SEEN_WITHIN_S, "rollout 20")
    at_20 = {o.order_id for o in ORDERS if source.decide(o).path is Route.INSTANT}
    controller.set_percentage(60, actor="ci")
    wait_until(lambda: source.decide(ORDERS[0]).rollout == 60, SEEN_WITHIN_S, "rollout 60")
    at_60 = {o.order_id for o in ORDERS if source.decide(o).path is Route.INSTANT}
    assert len(at_20) > 300
    assert at_20 <= at_60


def test_cli_bad_input_changes_nothing_on_the_server(
    controller: UnleashRolloutController, settings: Settings
) -> None:
    """`strangler rollout set 150` exits 2 with a clear message; the server's flag is as it was."""
    before = controller.show()
    refused = _cli(settings, "set", "150")
    assert (refused.returncode, "between 0 and 100" in refused.stderr) == (2, True)
    assert controller.show() == before
