"""``strangler serve``: gunicorn settings, worker lifecycle hooks, the command line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from flask import Flask
from prometheus_client import values

from strangler.cli.main import main
from strangler.settings import Settings
from strangler.sidecar import server
from strangler.sidecar.gunicorn_worker import WORKER_CLASS
from strangler.sidecar.server import SidecarServer, gunicorn_options
from strangler.sidecar.state import sidecar_state
from tests.unit.sidecar.fakes import FakeRuntime


def test_gunicorn_options_follow_the_settings() -> None:
    """Bind, workers and threads come from the settings; the worker answers its errors in JSON."""
    options = gunicorn_options(
        Settings(serve_host="0.0.0.0", serve_port=9090, serve_workers=3, serve_threads=32)  # noqa: S104
    )
    assert (options["bind"], options["workers"], options["threads"], options["worker_class"]) == (
        "0.0.0.0:9090",
        3,
        32,
        WORKER_CLASS,
    )
    assert options["graceful_timeout"] > 20


def test_heartbeat_files_go_to_a_writable_memory_directory(tmp_path: Path) -> None:
    """The workers' heartbeat files go to the given directory when it can take them, else
    to gunicorn's default (None); the shipped options use the default choice."""
    missing = tmp_path / "no-such-dir"
    assert (server.heartbeat_dir(tmp_path), server.heartbeat_dir(missing)) == (str(tmp_path), None)
    assert gunicorn_options(Settings())["worker_tmp_dir"] == server.heartbeat_dir()


def test_server_config_has_the_lifecycle_hooks() -> None:
    """The gunicorn app starts the runtime after loading and stops it on worker exit."""
    cfg = SidecarServer(Settings(serve_port=9091)).cfg
    assert (cfg.bind, cfg.threads, cfg.worker_class_str) == (["127.0.0.1:9091"], 16, WORKER_CLASS)
    assert (cfg.post_worker_init, cfg.worker_exit) == (server._start_workers, server._stop_workers)


def test_worker_hooks_start_and_stop_the_state(make_app: Callable[..., Flask]) -> None:
    """post_worker_init starts the app's background work; worker_exit stops it."""
    app = make_app()
    worker = SimpleNamespace(wsgi=app)
    server._start_workers(worker)
    started = sidecar_state(app).started
    server._stop_workers(None, worker)
    assert (started, sidecar_state(app).started) == (True, False)


@pytest.mark.parametrize(
    ("process_orders", "runtime_running"),
    [(True, True), (False, False)],
    ids=["processing", "intake-only"],
)
def test_intake_only_server_starts_no_runtime_workers(
    make_app: Callable[..., Flask],
    runtime: FakeRuntime,
    process_orders: bool,
    runtime_running: bool,
) -> None:
    """An intake-only server takes orders in but leaves the dispatcher and follower stopped."""
    app = make_app()
    worker = SimpleNamespace(wsgi=app, app=SidecarServer(Settings(), process_orders=process_orders))
    server._start_workers(worker)
    assert (sidecar_state(app).started, runtime.running) == (True, runtime_running)
    server._stop_workers(None, worker)


def test_several_workers_switch_on_multiprocess_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several workers, metric files go to a fresh directory under the data dir."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    stale = tmp_path / "prometheus-multiproc" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    path = server._fresh_multiprocess_dir(tmp_path / "prometheus-multiproc")
    assert (os.environ["PROMETHEUS_MULTIPROC_DIR"], list(path.iterdir())) == (str(path), [])
    assert values.ValueClass is not values.MutexValue


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRANGLER_ORDER_ROUTE": "orders"}, "STRANGLER_ORDER_ROUTE must look like"),
        ({"STRANGLER_ORDER_FIELDS": "order_id"}, "STRANGLER_ORDER_FIELDS items must look like"),
        ({"STRANGLER_SERVE_PORT": "http"}, "STRANGLER_SERVE_PORT must be an integer"),
        ({"STRANGLER_SERVE_THREADS": "0"}, "STRANGLER_SERVE_THREADS must be between 1 and"),
        ({"STRANGLER_UPSTREAM_TIMEOUT_S": "0"}, "STRANGLER_UPSTREAM_TIMEOUT_S must be between"),
        ({"STRANGLER_ROUTING_PROCESSES": "0"}, "STRANGLER_ROUTING_PROCESSES must be between"),
    ],
    ids=["route", "fields", "port", "threads", "timeout", "routing-processes"],
)
def test_serve_refuses_bad_settings_before_starting(env: dict[str, str], message: str) -> None:
    """A wrong setting stops ``strangler serve`` at once with the setting named."""
    result = CliRunner().invoke(main, ["serve"], env=env)
    assert (result.exit_code, message in result.output) == (1, True)


@pytest.mark.parametrize(
    "args", [["--routing", "inline"], ["--intake-only"]], ids=["inline", "intake"]
)
def test_routing_processes_need_routing_in_processes(args: list[str]) -> None:
    """More than one routing process with nothing to run them in is refused, named."""
    result = CliRunner().invoke(main, ["serve", "--routing-processes", "2", *args])
    assert result.exit_code == 1
    assert "--routing-processes" in result.output
