"""Reliability scenario 3: the flag source fails while orders flow.

Real ``strangler serve`` processes in front of the real simulator. Embedded mode: no flag
file at start, then a good one, then the file corrupted. Server mode: a real Unleash
server (npm ``unleash-server``, tests/integration/unleash_fixture.py) stopped mid-run,
and a sidecar started with the server down and no bootstrap file. Routing goes on by
the last good definitions, or sends orders to legacy when there never were any; the
ledger's pinned decisions and the ``routing`` field of ``/_strangler/readyz`` say which.
Every order still ends with its right outcome.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from strangler.orders import OrderNotification
from strangler.rollout.controller import UnleashRolloutController, rollout_controller_from_settings
from strangler.settings import Settings
from tests.helpers import free_port, wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim
from tests.integration.routing import (
    TERMINAL,
    create_in_legacy,
    expected_outcome,
    mixed_orders,
    terminal_transitions,
    write_flags,
)
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar
from tests.integration.unleash_fixture import running_unleash

pytestmark = pytest.mark.slow

SEEN_WITHIN_S = 15.0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator, its batch jobs running every second."""
    with start_legacy_sim(tmp_path, SimOptions(job_interval=1.0)) as running:
        yield running


def readyz(sidecar: Sidecar) -> tuple[int, dict[str, Any]]:
    """The readiness answer: status code and body."""
    response = requests.get(f"{sidecar.url}/_strangler/readyz", timeout=10)
    return response.status_code, response.json()


def routing(sidecar: Sidecar) -> str:
    """How readiness says orders are being routed."""
    return str(readyz(sidecar)[1]["routing"])


def story(sidecar: Sidecar, order_id: str) -> dict[str, Any] | None:
    """The order's story, or None while the ledger does not have it."""
    response = requests.get(f"{sidecar.url}/_strangler/orders/{order_id}", timeout=10)
    return response.json() if response.status_code == 200 else None


def decisions(
    sim: RunningSim, sidecar: Sidecar, orders: list[OrderNotification]
) -> dict[str, tuple[str, str, str]]:
    """Place the orders (legacy app, then the sidecar); their pinned (path, revision, reason)."""
    create_in_legacy(sim.url, orders)
    for order in orders:
        response = requests.post(
            f"{sidecar.url}/_strangler/notifications",
            json=order.to_dict(),
            headers=AUTH,
            timeout=10,
        )
        assert response.status_code == 202, response.text

    def routed() -> bool:
        return all((story(sidecar, o.order_id) or {}).get("decision") for o in orders)

    wait_until(routed, 20, "every order to be routed")
    found = {}
    for order in orders:
        decision = (story(sidecar, order.order_id) or {})["decision"]
        found[order.order_id] = (decision["path"], decision["flag_revision"], decision["reason"])
    return found


def routed_by(
    sim: RunningSim, sidecar: Sidecar, revision: str, prefix: str
) -> list[OrderNotification]:
    """Place probe orders until one is routed by ``revision``; return the probes placed.

    Readiness is answered by the HTTP process, while orders are routed in the routing
    process, which reloads the same flag source on its own (within about a second).
    """
    probes: list[OrderNotification] = []

    def seen() -> bool:
        probe = mixed_orders(len(probes) + 1, prefix)[-1]
        probes.append(probe)
        return decisions(sim, sidecar, [probe])[probe.order_id][1] == revision

    wait_until(seen, SEEN_WITHIN_S, f"the routing process to route by {revision}")
    return probes


def all_end_right(sidecar: Sidecar, orders: list[OrderNotification]) -> None:
    """Wait until every order is terminal; each has its rules' outcome, and ended once."""
    wait_until(
        lambda: all((story(sidecar, o.order_id) or {}).get("status") in TERMINAL for o in orders),
        60,
        "every order to end",
    )
    ended = {o.order_id: (story(sidecar, o.order_id) or {}).get("status") for o in orders}
    assert ended == {o.order_id: expected_outcome(o) for o in orders}
    endings = terminal_transitions(f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}")
    assert {endings[o.order_id] for o in orders} == {1}


def test_embedded_flags_missing_then_good_then_corrupt(sim: RunningSim, tmp_path: Path) -> None:
    """No file: legacy and not ready; a good file: instant; corrupt: the last good revision."""
    flags = tmp_path / "flags.json"
    with running_sidecar(
        tmp_path,
        upstream_url=sim.url,
        legacy_url=sim.url,
        flags_file=str(flags),
        poll_interval_ms="100",
    ) as sidecar:
        status, body = readyz(sidecar)
        missing = decisions(sim, sidecar, mixed_orders(5, "none"))

        write_flags(flags, rollout=100)
        wait_until(lambda: readyz(sidecar)[0] == 200, SEEN_WITHIN_S, "the flag file to load")
        revision = readyz(sidecar)[1]["routing"].split()[3]
        probes = routed_by(sim, sidecar, revision, "probe")
        good = decisions(sim, sidecar, mixed_orders(5, "good"))

        flags.write_text('{"version": 2, "features": [')
        last_good = f"by the last good flag revision {revision} (embedded): "
        wait_until(
            lambda: routing(sidecar).startswith(last_good), SEEN_WITHIN_S, "the corrupt file seen"
        )
        corrupt_status, corrupt_body = readyz(sidecar)
        corrupt = decisions(sim, sidecar, mixed_orders(5, "bad"))

        all_end_right(
            sidecar,
            mixed_orders(5, "none") + probes + mixed_orders(5, "good") + mixed_orders(5, "bad"),
        )

    assert status == 503
    assert body["checks"]["flags"].startswith("not loaded (embedded): flag file ")
    assert body["routing"].startswith("every order to legacy: flag file ")
    # The SDK starts on an empty definition set: the flag is unknown, so legacy.
    assert set(missing.values()) == {("legacy", "none", "flag_unknown")}
    assert set(good.values()) == {("instant", revision, "in_rollout")}
    assert (corrupt_status, corrupt_body["checks"]["flags"]) == (200, "ok")
    assert "JSON" in corrupt_body["routing"]
    assert set(corrupt.values()) == {("instant", revision, "in_rollout")}
    print(  # the scenario's figures for docs/RELIABILITY.md
        f"\nflag faults (embedded): orders={15 + len(probes)} probes={len(probes)} all terminal, "
        f"no file -> {sorted(set(missing.values()))}, good -> {sorted(set(good.values()))}, "
        f"corrupt -> {sorted(set(corrupt.values()))}; readyz {corrupt_body['routing']!r}"
    )


@pytest.mark.needs_node
@pytest.mark.needs_postgres
def test_unleash_server_stopped_mid_run_and_absent_at_start(
    sim: RunningSim, tmp_path: Path
) -> None:
    """Server stopped: routing by its last definitions; down at start with no file: legacy."""
    bootstrap = write_flags(tmp_path / "bootstrap.json", rollout=0)
    with ExitStack() as unleash_up:
        server = unleash_up.enter_context(running_unleash(tmp_path))
        settings = Settings(
            unleash_url=server.api_url,
            unleash_admin_token=server.admin_token,
            flags_file=write_flags(tmp_path / "server-flags.json", rollout=100),
            data_dir=tmp_path / "admin",
        )
        controller = rollout_controller_from_settings(settings)
        assert isinstance(controller, UnleashRolloutController)
        assert controller.push(settings.flags_file) is True
        revision = controller.show().revision
        with running_sidecar(
            tmp_path,
            upstream_url=sim.url,
            legacy_url=sim.url,
            flags_file=str(bootstrap),
            unleash_url=server.api_url,
            unleash_token=server.client_token,
            unleash_admin_token=server.admin_token,
            poll_interval_ms="100",
        ) as sidecar:
            current = f"by flag revision {revision} (server)"
            wait_until(lambda: routing(sidecar) == current, SEEN_WITHIN_S, "the server's flag")
            probes = routed_by(sim, sidecar, revision, "probe")
            served = decisions(sim, sidecar, mixed_orders(5, "srv"))

            unleash_up.close()
            last_good = f"by the last good flag revision {revision} (server): no answer from "
            wait_until(
                lambda: routing(sidecar).startswith(last_good), 30, "the server to be missed"
            )
            stopped_status, _ = readyz(sidecar)
            stopped = decisions(sim, sidecar, mixed_orders(5, "gone"))
            all_end_right(sidecar, probes + mixed_orders(5, "srv") + mixed_orders(5, "gone"))

    cold_dir = tmp_path / "cold"
    cold_dir.mkdir()
    shutil.copy(bootstrap, cold_dir / "unused.json")
    with running_sidecar(
        cold_dir,
        upstream_url=sim.url,
        legacy_url=sim.url,
        flags_file=str(cold_dir / "missing.json"),
        unleash_url=f"http://127.0.0.1:{free_port()}/api",
        unleash_token="default:development.none",
        unleash_admin_token="*:*.none",
        poll_interval_ms="100",
    ) as cold:
        cold_status, cold_body = readyz(cold)
        cold_orders = mixed_orders(5, "cold")
        cold_decisions = decisions(sim, cold, cold_orders)
        all_end_right(cold, cold_orders)

    assert set(served.values()) == {("instant", revision, "in_rollout")}
    assert stopped_status == 200
    assert set(stopped.values()) == {("instant", revision, "in_rollout")}
    assert cold_status == 503
    assert cold_body["routing"].startswith("every order to legacy: ")
    assert set(cold_decisions.values()) == {("legacy", "none", "flags_not_loaded")}
    print(  # the scenario's figures for docs/RELIABILITY.md
        f"\nflag faults (server): orders={15 + len(probes)} probes={len(probes)} all terminal, "
        f"served -> {sorted(set(served.values()))}, stopped -> {sorted(set(stopped.values()))}, "
        f"cold -> {sorted(set(cold_decisions.values()))}; readyz cold {cold_body['routing']!r}"
    )
