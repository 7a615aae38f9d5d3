"""``strangler rollout``: commands, exit codes, Settings from the environment, factories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from strangler.cli.main import main
from strangler.exceptions import ConfigurationError
from strangler.flags import EmbeddedFlagSource, UnleashFlagSource, flag_source_from_settings
from strangler.ledger import ledger_from_url
from strangler.rollout.controller import (
    FileRolloutController,
    UnleashRolloutController,
    rollout_controller_from_settings,
)
from strangler.settings import Settings


@pytest.fixture
def env(flag_file: Path, tmp_path: Path) -> dict[str, str]:
    """Embedded-mode environment: the flag file copy and a data dir in tmp_path."""
    return {"STRANGLER_FLAGS_FILE": str(flag_file), "STRANGLER_DATA_DIR": str(tmp_path / "data")}


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["rollout", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_set_then_show(env: dict[str, str], tmp_path: Path) -> None:
    """`set 25` then `show` shows 25%, and the audit log holds the entry with the reason."""
    code, out, _ = _run(env, "set", "25", "--reason", "first step", "--actor", "ana")
    assert (code, out.splitlines()[0].split(" (")[0]) == (
        0,
        "stage off -> shadow, rollout 0% -> 25%",
    )
    code, out, _ = _run(env, "show")
    assert code == 0
    assert "rollout   25%" in out.splitlines()
    audit = (tmp_path / "data/rollout-audit.jsonl").read_text()
    (record,) = [json.loads(line) for line in audit.splitlines()]
    assert (
        record["actor"],
        record["reason"],
        record["from"]["rollout"],
        record["to"]["rollout"],
    ) == (
        "ana",
        "first step",
        0,
        25,
    )


def test_show_json(env: dict[str, str]) -> None:
    """`show --json` prints the state as JSON."""
    code, out, _ = _run(env, "show", "--json")
    state = json.loads(out)
    assert (code, state["mode"], state["rollout"], state["variants"]) == (
        0,
        "embedded",
        0,
        {"instant": 0, "shadow": 100},
    )
    assert (state["stage"], state["shares"]) == ("off", {"instant": 0.0, "shadow": 0.0})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["kill", "--reason", "incident"], "enabled   no (killed: every order goes to legacy)"),
        (["variants", "instant=70,shadow=30"], "variants  instant=70% shadow=30%"),
        (["enable"], "no change: the flag was already so (enable)"),
    ],
    ids=["kill", "variants", "enable-noop"],
)
def test_commands(env: dict[str, str], args: list[str], expected: str) -> None:
    """kill, variants and enable succeed and say what the flag is now."""
    code, out, _ = _run(env, *args)
    assert (code, expected in out.splitlines()) == (0, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "150"], "between 0 and 100, got 150"),
        (["set", "-5"], "between 0 and 100, got -5"),
        (["set", "2.5"], "whole number"),
        (["variants", "instant=70,foo=30"], "unknown variant 'foo'"),
        (["variants", "instant=70,shadow=20"], "add up to 100"),
    ],
    ids=["pct-150", "pct-negative", "pct-fraction", "unknown-variant", "weights-sum"],
)
def test_bad_input_exits_2_and_writes_nothing(
    env: dict[str, str], flag_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    """Bad input exits 2 with the message on stderr; flag file and audit log untouched."""
    original = flag_file.read_bytes()
    code, _, err = _run(env, *args)
    assert (code, message in err, "nothing was changed" in err) == (2, True, True)
    assert flag_file.read_bytes() == original
    assert not (tmp_path / "data/rollout-audit.jsonl").exists()


def test_invalid_flag_file_exits_2(env: dict[str, str], flag_file: Path) -> None:
    """A flag file that fails validation exits 2 and is left as it was."""
    flag_file.write_text('{"features": []}')
    code, _, err = _run(env, "set", "10")
    assert (code, "has no feature named" in err) == (2, True)
    assert flag_file.read_text() == '{"features": []}'


def test_server_mode_without_admin_token_exits_2(env: dict[str, str]) -> None:
    """Server mode without STRANGLER_UNLEASH_ADMIN_TOKEN is a configuration error (exit 2)."""
    code, _, err = _run({**env, "STRANGLER_UNLEASH_URL": "http://unleash.test/api"}, "show")
    assert (code, "STRANGLER_UNLEASH_ADMIN_TOKEN is required" in err) == (2, True)


def test_unreachable_unleash_exits_1(env: dict[str, str]) -> None:
    """When the Admin API cannot be reached, the command exits 1 with the URL."""
    server = {
        **env,
        "STRANGLER_UNLEASH_URL": "http://unleash.test/api",
        "STRANGLER_UNLEASH_ADMIN_TOKEN": "*:*.admin",
    }
    with responses.RequestsMock() as api:
        api.get(
            "http://unleash.test/api/admin/projects/default/features/city_orders_instant_processing",
            status=401,
            json={"message": "You must log in"},
        )
        code, _, err = _run(server, "set", "10")
    assert (code, "refused with 401" in err) == (1, True)


def test_push_needs_server_mode(env: dict[str, str]) -> None:
    """`push` in embedded mode exits 2 and says how to enable server mode."""
    code, _, err = _run(env, "push")
    assert (code, "STRANGLER_UNLEASH_URL" in err) == (2, True)


def test_factories_follow_the_settings(flag_file: Path, tmp_path: Path) -> None:
    """Without an Unleash URL both factories are embedded; with one, server mode."""
    embedded = Settings(flags_file=flag_file, data_dir=tmp_path)
    server = embedded.replace(
        unleash_url="http://127.0.0.1:9/api", unleash_token="t", unleash_admin_token="a"
    )
    assert isinstance(rollout_controller_from_settings(embedded), FileRolloutController)
    assert isinstance(rollout_controller_from_settings(server), UnleashRolloutController)
    with flag_source_from_settings(embedded) as source:
        assert isinstance(source, EmbeddedFlagSource)
    with flag_source_from_settings(server.replace()) as source:
        assert isinstance(source, UnleashFlagSource)


def test_server_mode_source_needs_a_client_token(flag_file: Path) -> None:
    """Server mode without STRANGLER_UNLEASH_TOKEN is a ConfigurationError naming it."""
    settings = Settings(flags_file=flag_file, unleash_url="http://127.0.0.1:9/api")
    with pytest.raises(ConfigurationError, match="STRANGLER_UNLEASH_TOKEN"):
        flag_source_from_settings(settings)


def test_a_change_goes_on_the_ledger_timeline(env: dict[str, str], tmp_path: Path) -> None:
    """`set 30` records a rollout event in the ledger of the data dir; a no-op does not."""
    _run(env, "set", "30", "--reason", "parity holds", "--actor", "ana")
    _run(env, "set", "30", "--reason", "again")
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'data/ledger.sqlite3'}")
    try:
        (event,) = ledger.rollout_events()
    finally:
        ledger.close()
    assert (event.actor, event.from_rollout, event.to_rollout, event.reason) == (
        "ana",
        0,
        30,
        "parity holds",
    )


def test_an_unreachable_ledger_warns_but_the_change_stands(env: dict[str, str]) -> None:
    """The flag change is made and audited; the ledger failure is a warning, exit 0."""
    broken = {**env, "STRANGLER_LEDGER_URL": "postgresql+psycopg://nobody:x@127.0.0.1:9/none"}
    code, out, err = _run(broken, "set", "20", "--reason", "r")
    assert code == 0
    assert out.startswith("stage off -> shadow, rollout 0% -> 20%")
    assert "warning: the ledger did not record this change" in err


def _ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data/ledger.sqlite3'}"


@pytest.mark.parametrize(
    "args",
    [
        ["stage", "live", "--percent", "5"],
        ["stage", "complete"],
        ["variants", "instant=10,shadow=90"],
    ],
    ids=["stage-live", "stage-complete", "variants"],
)
def test_going_live_without_evidence_is_refused(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    """From shadow (nothing compared) to live exits 3, says why, and changes nothing."""
    assert _run(env, "set", "40", "--reason", "shadow 40%")[0] == 0
    before = _run(env, "show", "--json")[1]
    code, _, err = _run(env, *args, "--reason", "go live")
    assert code == 3
    assert "no comparisons yet" in err
    assert "--no-evidence" in err
    assert _run(env, "show", "--json")[1] == before


def test_set_from_no_instant_to_live_asks_for_evidence(env: dict[str, str]) -> None:
    """`set` from 0 % with instant weight to a live share is refused without evidence."""
    assert _run(env, "variants", "instant=100", "--reason", "old shape")[0] == 0
    code, _, err = _run(env, "set", "10", "--reason", "first step")
    assert (code, "no comparisons yet" in err) == (3, True)


def test_no_evidence_goes_live_and_is_recorded(env: dict[str, str], tmp_path: Path) -> None:
    """--no-evidence goes live; the audit log and the ledger timeline say so."""
    _run(env, "set", "100", "--reason", "shadow all")
    code, out, _ = _run(
        env, "stage", "live", "--percent", "5", "--reason", "hotfix", "--no-evidence"
    )
    assert code == 0
    assert "stage shadow -> live" in out
    assert "without a passing comparison verdict" in out
    audit = (tmp_path / "data/rollout-audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["no_evidence"] is True
    ledger = ledger_from_url(_ledger_url(tmp_path))
    try:
        last = ledger.rollout_events()[-1]
    finally:
        ledger.close()
    assert (last.kind, last.stage, last.no_evidence, last.instant_weight) == (
        "stage",
        "live",
        True,
        5.0,
    )


def test_kill_and_enable_are_never_gated(env: dict[str, str]) -> None:
    """A live rollout killed and enabled again needs no evidence either way."""
    _run(env, "stage", "live", "--percent", "5", "--reason", "r", "--no-evidence")
    assert _run(env, "kill", "--reason", "incident")[0] == 0
    code, out, _ = _run(env, "enable", "--reason", "fixed")
    assert (code, "enabled no -> yes" in out) == (0, True)


def test_stage_refuses_a_live_share_that_leaves_too_little_shadow(env: dict[str, str]) -> None:
    """`stage live --percent 95` keeps less than the 10 % shadow share: exit 2, why."""
    code, _, err = _run(env, "stage", "live", "--percent", "95", "--no-evidence")
    assert (code, "shadow share of 10%" in err) == (2, True)


def test_show_names_the_stage(env: dict[str, str]) -> None:
    """`show` prints the stage and the shares of orders on each path."""
    _run(env, "stage", "shadow", "--percent", "30", "--reason", "compare 30%")
    out = _run(env, "show")[1].splitlines()
    assert "stage     shadow" in out
    assert "orders    instant 0%, shadow 30%, legacy only 70%" in out


def test_an_unreadable_ledger_is_no_evidence(env: dict[str, str]) -> None:
    """Going live with the ledger unreachable is refused, saying why; --no-evidence goes."""
    broken = {**env, "STRANGLER_LEDGER_URL": "postgresql+psycopg://nobody:x@127.0.0.1:9/none"}
    code, _, err = _run(broken, "stage", "live", "--reason", "r")
    assert (code, "the ledger cannot be read" in err) == (3, True)
    assert _run(broken, "stage", "live", "--reason", "r", "--no-evidence")[0] == 0
