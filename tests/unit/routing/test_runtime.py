"""The runtime: every part built from Settings, wired, started and stopped."""

from __future__ import annotations

import threading
from pathlib import Path as FsPath

import pytest
from click.testing import CliRunner

from strangler.cli.main import main
from strangler.exceptions import ConfigurationError
from strangler.routing.runtime import Runtime
from strangler.settings import Settings
from tests.helpers import wait_until
from tests.unit.ledger.support import make_order
from tests.unit.routing.fakes import FakeFlags, FakeInstant, FakeLegacy


class ClosableInstant(FakeInstant):
    """A fake backend that notes whether it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_runtime_processes_orders_with_a_ledger_in_the_data_dir(tmp_path: FsPath) -> None:
    """Built from Settings, the runtime keeps its ledger in the data dir and processes orders."""
    settings = Settings(data_dir=tmp_path / "data", workers=2, poll_interval_ms=20)
    instant = ClosableInstant()
    runtime = Runtime.from_settings(
        settings, flag_source=FakeFlags(), legacy=FakeLegacy(), instant=instant
    )
    runtime.start()
    try:
        result = runtime.router.intake(make_order("o-1"), source="api")
        wait_until(lambda: runtime.ledger.backlog() == 0, 10, "the order to be terminal")
    finally:
        runtime.stop(5)
    assert result.new is True
    assert (tmp_path / "data" / "ledger.sqlite3").is_file()
    assert runtime.dispatcher.workers == 2
    assert instant.closed is False  # injected parts are the caller's to close


def test_the_runtime_works_as_a_context_manager(tmp_path: FsPath) -> None:
    """``with Runtime...`` starts the workers and stops them at the end."""
    settings = Settings(data_dir=tmp_path, poll_interval_ms=20)
    parts = {"flag_source": FakeFlags(), "legacy": FakeLegacy(), "instant": FakeInstant()}
    with Runtime.from_settings(settings, **parts) as runtime:  # type: ignore[arg-type]
        runtime.router.intake(make_order("o-1"), source="api")
        wait_until(lambda: runtime.ledger.backlog() == 0, 10, "the order to be terminal")
    assert runtime.dispatcher.in_flight == 0


def test_a_bad_ledger_url_is_a_configuration_error(tmp_path: FsPath) -> None:
    """An unsupported ledger URL is refused before anything starts."""
    settings = Settings(data_dir=tmp_path, ledger_url="mysql://ledger@db/ledger")
    with pytest.raises(ConfigurationError, match="STRANGLER_LEDGER_URL"):
        Runtime.from_settings(
            settings, flag_source=FakeFlags(), legacy=FakeLegacy(), instant=FakeInstant()
        )


def test_settings_tune_the_workers(tmp_path: FsPath) -> None:
    """Lease, polling and retry settings reach the dispatcher, follower and router."""
    settings = Settings(data_dir=tmp_path, lease_seconds=7, poll_interval_ms=250, max_attempts=2)
    runtime = Runtime.from_settings(
        settings, flag_source=FakeFlags(), legacy=FakeLegacy(), instant=FakeInstant()
    )
    try:
        assert runtime.dispatcher.lease_seconds == 7
        assert runtime.dispatcher.poll_interval_s == 0.25
        assert runtime.follower.interval_s == 0.25
        assert runtime.router.retry.max_attempts == 2
    finally:
        runtime.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRANGLER_LEDGER_URL": "mysql://ledger@db/ledger"}, "STRANGLER_LEDGER_URL uses"),
        ({"STRANGLER_LEASE_SECONDS": "0"}, "STRANGLER_LEASE_SECONDS must be at least 1"),
    ],
    ids=["unsupported-ledger", "zero-lease"],
)
def test_the_worker_command_refuses_bad_settings(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`strangler worker` with a wrong setting exits 2 naming it, before starting anything."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert message in result.output


def test_a_runtime_on_a_sqlite_file_checkpoints_its_wal_and_stops_doing_so(
    tmp_path: FsPath,
) -> None:
    """The WAL checkpointer's thread runs with the runtime and ends with it."""

    def checkpointers() -> int:
        return sum(thread.name == "wal-checkpointer" for thread in threading.enumerate())

    before = checkpointers()
    settings = Settings(data_dir=tmp_path, poll_interval_ms=20)
    parts = {"flag_source": FakeFlags(), "legacy": FakeLegacy(), "instant": FakeInstant()}
    with Runtime.from_settings(settings, **parts):  # type: ignore[arg-type]
        assert checkpointers() == before + 1
    assert checkpointers() == before
