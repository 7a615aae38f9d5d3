"""``strangler legacy-sim`` options become the simulator's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from strangler.cli import legacy_sim as sim_cli
from strangler.cli.main import main
from strangler.sim import FaultConfig, simulator


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the blocking server with a recorder of what it would serve."""
    calls: list[dict[str, Any]] = []

    def fake_serve(app: Flask, **kwargs: Any) -> None:
        sim = simulator(app)
        calls.append({"config": sim.config, "faults": sim.faults.config, **kwargs})
        sim.stop()

    monkeypatch.setattr(sim_cli, "serve", fake_serve)
    # Logging is configured process-wide (and cached); leave the test session's alone.
    monkeypatch.setattr(sim_cli, "configure_logging", lambda *_args, **_kw: None)
    return calls


def test_options_reach_the_simulator(served: list[dict[str, Any]], tmp_path: Path) -> None:
    """Every option lands in the config: jobs, rules, faults, credentials, address."""
    result = CliRunner().invoke(
        main,
        [
            "legacy-sim",
            "--port",
            "0",
            "--db",
            str(tmp_path / "x.sqlite3"),
            "--job-interval",
            "2",
            "--batch-size",
            "7",
            "--seed",
            "5",
            "--threads",
            "4",
            "--fraud-limit-cents",
            "500",
            "--block-user",
            "u1",
            "--block-user",
            "u2",
            "--max-attempts",
            "4",
            "--latency-ms",
            "10",
            "--jitter-ms",
            "3",
            "--error-rate",
            "0.25",
            "--slow-jobs-ms",
            "9",
            "--no-scheduler",
        ],
        env={"STRANGLER_LEGACY_TOKEN": "from-env"},
    )
    assert result.exit_code == 0, result.output
    (call,) = served
    config = call["config"]
    assert (config.job_interval_s, config.batch_size, config.seed, config.scheduler) == (
        2.0,
        7,
        5,
        False,
    )
    assert (config.rules.fraud_limit_cents, config.rules.max_attempts) == (500, 4)
    assert config.rules.blocked_users == frozenset({"u1", "u2"})
    assert config.token == "from-env"
    assert call["faults"] == FaultConfig(
        latency_ms=10, jitter_ms=3, error_rate=0.25, slow_jobs_ms=9
    )
    assert (call["host"], call["port"], call["threads"]) == ("127.0.0.1", 0, 4)


def test_basic_auth_replaces_the_default_token(
    served: list[dict[str, Any]], tmp_path: Path
) -> None:
    """--basic-auth USER:PASSWORD wins over a token from the environment."""
    result = CliRunner().invoke(
        main,
        ["legacy-sim", "--db", str(tmp_path / "x.sqlite3"), "--basic-auth", "ops:p:w"],
        env={"STRANGLER_LEGACY_TOKEN": "from-env"},
    )
    assert result.exit_code == 0, result.output
    assert (served[0]["config"].basic_auth, served[0]["config"].token) == (("ops", "p:w"), None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outage", "refuse"], "outage_seconds"),
        (["--token", "t", "--basic-auth", "u:p"], "not both"),
        (["--basic-auth", "nocolon"], "USER:PASSWORD"),
        (["--job-interval", "0"], "job-interval"),
        (["--error-rate", "2"], "error-rate"),
    ],
    ids=["refuse-without-seconds", "two-credentials", "bad-basic", "zero-interval", "rate"],
)
def test_bad_options_are_usage_errors(
    served: list[dict[str, Any]], tmp_path: Path, args: list[str], message: str
) -> None:
    """Bad option combinations exit with status 2 and say what is wrong; nothing is served."""
    result = CliRunner().invoke(main, ["legacy-sim", "--db", str(tmp_path / "x.sqlite3"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert served == []
