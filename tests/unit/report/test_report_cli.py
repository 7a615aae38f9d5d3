"""``strangler report``: formats, output file, thresholds and exit codes on a real SQLite ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from strangler.cli import report as report_command
from strangler.cli.main import main
from strangler.ledger import SqlLedger
from strangler.ledger.engine import create_ledger_engine
from strangler.sidecar.report_process import NICENESS
from tests.helpers import strangler_cmd
from tests.unit.report.known_ledger import T0, UNTIL, build_known_ledger

WINDOW = ["--since", T0.isoformat(), "--until", UNTIL.isoformat()]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings pointing at a SQLite ledger holding the known rows."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    engine = create_ledger_engine(url)
    build_known_ledger(engine)
    engine.dispose()
    return {"STRANGLER_LEDGER_URL": url, "STRANGLER_DATA_DIR": str(tmp_path)}


def test_text_report_to_stdout(env: dict[str, str]) -> None:
    """The default format is the text tables, on stdout, exit 0."""
    result = CliRunner().invoke(main, ["report", *WINDOW], env=env)
    assert result.exit_code == 0, result.output
    assert "Verdict over this report's window: FAIL" in result.output


def test_json_report_to_a_file(env: dict[str, str], tmp_path: Path) -> None:
    """--format json --out writes the JSON document and names the file and verdict."""
    out = tmp_path / "report.json"
    args = ["report", *WINDOW, "--format", "json", "--out", str(out)]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert (document["schema_version"], document["shadow"]["compared"]) == (1, 10)
    assert f"report written to {out} (verdict fail)" in result.output


def test_thresholds_change_the_verdict(env: dict[str, str]) -> None:
    """Looser thresholds given on the command line reach the verdict."""
    args = ["report", *WINDOW, "--format", "json", "--min-orders", "10"]
    args += ["--max-mismatch", "60%", "--max-error-rate", "0.5"]
    result = CliRunner().invoke(main, args, env=env)
    assert json.loads(result.output)["verdict"]["status"] == "pass"


def test_html_report(env: dict[str, str], tmp_path: Path) -> None:
    """--format html writes one HTML page."""
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", *WINDOW, "--format", "html", "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "not an ISO 8601 time"),
        (["--since", UNTIL.isoformat(), "--until", T0.isoformat()], "must be before"),
        (["--max-mismatch", "lots"], "is not a rate"),
        (["--max-mismatch", "150%"], "max_mismatch is a fraction"),
    ],
    ids=["bad-time", "reversed", "bad-rate", "rate-over-100"],
)
def test_bad_input_exits_2(env: dict[str, str], args: list[str], message: str) -> None:
    """Bad input exits 2 with a message naming the problem."""
    result = CliRunner().invoke(main, ["report", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_ledger_exits_1(tmp_path: Path) -> None:
    """A ledger that cannot be reached exits 1 and says so."""
    env = {
        "STRANGLER_LEDGER_URL": "postgresql+psycopg://nobody:x@127.0.0.1:1/none",
        "STRANGLER_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(main, ["report"], env=env)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output


def test_a_ledger_that_fails_mid_report_exits_1_naming_the_read(env: dict[str, str]) -> None:
    """A database error under the report exits 1 with the ledger's error, not a traceback."""
    engine = create_ledger_engine(env["STRANGLER_LEDGER_URL"])
    with engine.begin() as conn:  # opening the ledger would create a dropped table again
        conn.exec_driver_sql("ALTER TABLE comparison_steps RENAME COLUMN verdict TO gone")
    engine.dispose()
    result = CliRunner().invoke(main, ["report", *WINDOW, "--format", "json"], env=env)
    assert result.exit_code == 1, result.output
    assert (
        f"error: ledger {env['STRANGLER_LEDGER_URL']}: could not read the report: "
        "OperationalError: no such column: comparison_steps.verdict"
    ) in result.output


def test_report_as_a_real_process(env: dict[str, str]) -> None:
    """``python -m strangler report`` in its own process prints the JSON and exits 0."""
    result = subprocess.run(
        strangler_cmd("report", *WINDOW, "--format", "json"),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["paths"][1]["orders"] == 21


def test_the_cli_starts_without_matplotlib() -> None:
    """A fresh process importing the CLI leaves matplotlib (a second to load) until HTML."""
    probe = "import sys, strangler.cli.main; print('matplotlib' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "False"


def test_a_report_that_cannot_be_computed_exits_1_not_2(env: dict[str, str]) -> None:
    """A failure on our side (here a corrupt retention horizon) is exit 1, never bad input."""
    engine = create_ledger_engine(env["STRANGLER_LEDGER_URL"])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO kv (name, value, updated_at) VALUES "
            "('retention.horizon', 'not a time', '2030-01-01 00:00:00')"
        )
    engine.dispose()
    result = CliRunner().invoke(main, ["report", *WINDOW], env=env)
    assert result.exit_code == 1, result.output
    assert "error: the report could not be computed" in result.output


def _priorities(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, int]]:
    """Spy on the report's reads and its rendering: (what, on the caller's thread, nice)."""
    seen: list[tuple[str, bool, int]] = []
    caller = threading.get_native_id()
    read, render = SqlLedger.report, report_command._render

    def note(what: str) -> None:
        me = threading.get_native_id()
        seen.append((what, me == caller, os.getpriority(os.PRIO_PROCESS, me)))

    def spied_read(self: SqlLedger, **window: Any) -> Any:
        note("read")
        return read(self, **window)

    def spied_render(*args: Any, **kwargs: Any) -> str:
        note("render")
        return render(*args, **kwargs)

    monkeypatch.setattr(SqlLedger, "report", spied_read)
    monkeypatch.setattr(report_command, "_render", spied_render)
    return seen


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_on_sqlite_the_report_is_computed_at_nice_10_by_default(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside a live sidecar on the same SQLite file the report must not take its cores: the
    reads and the rendering run on a thread of their own, NICENESS below the caller."""
    seen = _priorities(monkeypatch)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    result = CliRunner().invoke(main, ["report", *WINDOW], env=env)
    assert result.exit_code == 0, result.output
    low = min(base + NICENESS, 19)
    # The window's report, the gate's step report, then the text.
    assert seen == [("read", False, low), ("read", False, low), ("render", False, low)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def test_normal_priority_computes_on_the_callers_thread(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--normal-priority opts out: everything at the caller's own priority."""
    seen = _priorities(monkeypatch)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    args = ["report", *WINDOW, "--format", "json", "--normal-priority"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert seen == [("read", True, base), ("render", True, base)]
