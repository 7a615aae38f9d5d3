"""Settings: one typed object from STRANGLER_* variables, a TOML file and overrides."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from strangler.exceptions import ConfigurationError
from strangler.settings import Settings


def test_defaults_work_on_one_machine() -> None:
    """With no variables set, every part gets a loopback or local default."""
    settings = Settings.from_env({})
    assert settings.upstream_url == "http://127.0.0.1:8000"
    assert settings.legacy_url == "http://127.0.0.1:8001"
    assert settings.instant_backend == "local"
    assert settings.effective_ledger_url == "sqlite:///.strangler/ledger.sqlite3"
    assert not settings.server_mode


def test_environment_variables_are_typed() -> None:
    """Paths, integers and comma lists are converted from their string form."""
    settings = Settings.from_env(
        {
            "STRANGLER_DATA_DIR": "/var/lib/strangler",
            "STRANGLER_WORKERS": "8",
            "STRANGLER_SNS_TOPIC_ARNS": "arn:a, arn:b,,",
            "STRANGLER_UNLEASH_URL": "http://127.0.0.1:4242/api",
        }
    )
    assert settings.data_dir == Path("/var/lib/strangler")
    assert settings.workers == 8
    assert settings.sns_topic_arns == ("arn:a", "arn:b")
    assert settings.server_mode


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """STRANGLER_CONFIG names a TOML file; variables override it and overrides beat both."""
    config = tmp_path / "strangler.toml"
    config.write_text('[strangler]\nworkers = 2\nlegacy_url = "http://legacy:9"\n')
    settings = Settings.from_env(
        {"STRANGLER_CONFIG": str(config), "STRANGLER_WORKERS": "6"},
        legacy_url=None,
        admin_token="t0ken",
    )
    assert (settings.workers, settings.legacy_url, settings.admin_token) == (
        6,
        "http://legacy:9",
        "t0ken",
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        pytest.param({"STRANGLER_WORKERS": "many"}, "STRANGLER_WORKERS", id="not-int"),
        pytest.param({"STRANGLER_WORKERS": "0"}, "STRANGLER_WORKERS", id="zero-workers"),
        pytest.param(
            {"STRANGLER_INSTANT_BACKEND": "lambda"}, "STRANGLER_INSTANT_BACKEND", id="backend"
        ),
        pytest.param({"STRANGLER_CONFIG": "/nonexistent.toml"}, "STRANGLER_CONFIG", id="no-file"),
        pytest.param({"STRANGLER_LOG_LEVEL": "verbose"}, "STRANGLER_LOG_LEVEL", id="log-level"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    """A malformed setting raises ConfigurationError whose message names the variable."""
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(environ)


def test_unknown_keys_in_toml_are_refused(tmp_path: Path) -> None:
    """A typo in the TOML file is an error, not silently ignored."""
    config = tmp_path / "strangler.toml"
    config.write_text("wrokers = 3\n")
    with pytest.raises(ConfigurationError, match="wrokers"):
        Settings.from_env({"STRANGLER_CONFIG": str(config)})


def test_the_log_level_is_a_logging_level() -> None:
    """STRANGLER_LOG_LEVEL (default info) is handed to logging as its number."""
    assert Settings.from_env({}).logging_level == logging.INFO
    assert Settings.from_env({"STRANGLER_LOG_LEVEL": "debug"}).logging_level == logging.DEBUG
