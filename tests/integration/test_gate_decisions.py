"""Must show (issue 17): the gate decides right on the days it exists for.

Real processes: the legacy simulator (with ``--api-divergence`` where a scenario needs it)
as upstream and legacy app, ``strangler serve`` in front of it, orders through the proxy,
``strangler rollout advance`` as a subprocess reading the sidecar's ledger and flag file.

(a) rollout 50 %, variants instant 80 / shadow 20, fraud_scan diverging for 5 % of
    orders: ``advance --watch --rollback-on-fail`` running beside the traffic exits 5
    (rolled back) within a bounded number of orders;
(b) the same without the divergence: the watching gate never fails;
(c) all shadow at 5 %: the gate fails;
(d) four instant orders whose payment gateway always errs fall back and then fail: error
    rate 4/4, ``GET /_strangler/report`` answers 200, the gate fails and rolls back;
(e) a small clean noise sample does not excuse a 4 % fraud_scan mismatch.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from strangler.sim.traffic import synthetic_orders
from tests.helpers import REPO_ROOT, free_port, running_process, strangler_cmd, wait_until
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar

pytestmark = pytest.mark.timeout(240)

BATCH = 100
# (a) must end within this many orders sent; the hold budget guarantees it.
MAX_ORDERS = 1500
HOLD_BUDGET = "600"


@dataclass(frozen=True)
class Stack:
    """The running simulator (``legacy``) and sidecar."""

    legacy: str
    sidecar: Sidecar

    def advance(self, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``strangler rollout advance --plan 50,100 <extra>`` on the sidecar's ledger and flag."""
        return subprocess.run(
            _advance_args(*extra),
            env=self.env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def env(self) -> dict[str, str]:
        """What the gate needs to find the sidecar's flag file, ledger and legacy app."""
        return {
            "PATH": "/usr/bin:/bin",
            "STRANGLER_DATA_DIR": str(self.sidecar.data_dir),
            "STRANGLER_FLAGS_FILE": str(self.sidecar.data_dir / "flags.json"),
            "STRANGLER_LEGACY_URL": self.legacy,
            "STRANGLER_LOG_FORMAT": "json",
        }

    def rollout(self) -> dict[str, Any]:
        """The flag as the admin API shows it."""
        answer = requests.get(f"{self.sidecar.url}/_strangler/rollout", headers=AUTH, timeout=5)
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state


def _advance_args(*extra: str) -> list[str]:
    return strangler_cmd("rollout", "advance", "--plan", "50,100", *extra)


@contextmanager
def _stack(
    tmp_path: Path,
    divergence: str | None,
    rollout: int,
    variants: dict[str, int],
    *,
    scheduler: bool = True,
    **settings: str,
) -> Iterator[Stack]:
    """The simulator and a sidecar at ``rollout`` % and ``variants``.

    The batch jobs run every 0.3 s, or only when a test asks (``scheduler=False``).
    """
    port = free_port()
    args = strangler_cmd(
        "legacy-sim",
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--db", str(tmp_path / "legacy.sqlite3"), "--job-interval", "0.3"),
        *("--batch-size", "500", "--log-format", "json"),
    )
    if divergence:
        args += ["--api-divergence", divergence]
    if not scheduler:
        args.append("--no-scheduler")
    legacy = f"http://127.0.0.1:{port}"
    with (
        running_process(args, ready_url=f"{legacy}/healthz", log_path=tmp_path / "legacy.log"),
        running_sidecar(
            tmp_path,
            upstream_url=legacy,
            legacy_url=legacy,
            poll_interval_ms="200",
            compare_sweep_interval_s="1",
            **settings,
        ) as sidecar,
    ):
        _set_rollout(sidecar, rollout, variants)
        yield Stack(legacy, sidecar)


def _set_rollout(sidecar: Sidecar, rollout: int, variants: dict[str, int]) -> None:
    for change in ({"variants": variants}, {"percentage": rollout}):
        answer = requests.put(
            f"{sidecar.url}/_strangler/rollout",
            # A new ledger has no comparisons: going live says so (issue 21's evidence rule).
            json={**change, "reason": "gate decisions", "no_evidence": True},
            headers=AUTH,
            timeout=5,
        )
        answer.raise_for_status()
    # The flag source refreshes within seconds; wait until routing sees the new shape.
    wait_until(lambda: _routing_shows(sidecar, rollout, variants), 15, "routing at the new rollout")


def _routing_shows(sidecar: Sidecar, rollout: int, variants: dict[str, int]) -> bool:
    paths = set()
    for n in range(60):
        probe = {"order_id": f"p{n}", "user_guid": f"probe-{n}", "unit_id": "p"}
        answer = requests.get(f"{sidecar.url}/_strangler/decide", params=probe, timeout=5)
        paths.add(answer.json().get("path"))
    expected = {name for name, weight in variants.items() if weight} | (
        {"legacy"} if rollout < 100 else set()
    )
    return paths == expected


def _send(sidecar: Sidecar, bodies: list[dict[str, Any]]) -> None:
    def send(body: dict[str, Any]) -> None:
        answer = requests.post(f"{sidecar.url}/orders", json=body, timeout=10)
        answer.raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, bodies))


def _report(sidecar: Sidecar) -> dict[str, Any]:
    answer = requests.get(f"{sidecar.url}/_strangler/report?examples=0", timeout=10)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def _settled(sidecar: Sidecar, sent: int) -> bool:
    """Every order routed and terminal, and every shadow order compared or given up."""
    report = _report(sidecar)
    paths = report["paths"]
    shadow = report["shadow"]
    return (
        sum(p["orders"] for p in paths) >= sent
        and sum(p["in_flight"] for p in paths) == 0
        and shadow["compared"] + shadow["not_compared"] >= shadow["orders"]
    )


def _path(report: dict[str, Any], group: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in report["paths"] if p["group"] == group)
    return found


def _run_jobs(stack: Stack) -> bool:
    """Run each batch job once, in order (the simulator's scheduler is off)."""
    for job in ("fraud_scan", "payment_authorization", "fulfillment"):
        requests.post(f"{stack.legacy}/jobs/{job}/run", timeout=10).raise_for_status()
    return True


def _orders(count: int, prefix: str, seed: int = 11) -> list[dict[str, Any]]:
    return list(synthetic_orders(count, seed=seed, prefix=prefix))


@contextmanager
def _watching(stack: Stack, tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``advance --watch 1 --rollback-on-fail`` in the background, output to watch.out."""
    with (tmp_path / "watch.out").open("w") as out:
        process = subprocess.Popen(
            _advance_args("--watch", "1", "--rollback-on-fail", *extra),
            env=stack.env(),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(10)


def _decisions(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("gate: ")]


MIXED = {"instant": 80, "shadow": 20}


def test_a_mixed_run_with_a_divergence_is_rolled_back(tmp_path: Path) -> None:
    """(a) 50 %, instant 80 / shadow 20, fraud_scan 5 %: the watching gate exits 5 in time."""
    with _stack(tmp_path, "fraud_scan=0.05", 50, MIXED) as stack:
        with _watching(stack, tmp_path, "--max-hold", HOLD_BUDGET) as watch:
            sent = 0
            while watch.poll() is None and sent < MAX_ORDERS:
                _send(stack.sidecar, _orders(BATCH, f"a{sent}"))
                sent += BATCH
                # Traffic judged as it comes: the next batch once this one is compared.
                wait_until(lambda n=sent: _settled(stack.sidecar, n), 30, "the batch settled")
            wait_until(lambda: watch.poll() is not None, 30, "the watching gate to end")
        output = (tmp_path / "watch.out").read_text()
        state = stack.rollout()
    print(f"(a) {sent} orders sent\n{output}")
    assert watch.returncode == 5, output
    assert _decisions(output)[-1].startswith("gate: roll back to legacy from 50%"), output
    assert sent <= MAX_ORDERS
    assert state["enabled"] is False


def test_the_same_mixed_run_without_divergence_never_fails(tmp_path: Path) -> None:
    """(b) The same run without the divergence: every round holds or advances, none fails."""
    with _stack(tmp_path, None, 50, MIXED) as stack:
        with _watching(stack, tmp_path, "--max-hold", HOLD_BUDGET) as watch:
            for batch in range(4):
                _send(stack.sidecar, _orders(BATCH, f"b{batch}"))
            wait_until(lambda: _settled(stack.sidecar, 4 * BATCH), 60, "every order settled")
            judged = stack.advance("--dry-run")
            still_watching = watch.poll() is None
        decisions = _decisions((tmp_path / "watch.out").read_text())
        state = stack.rollout()
    print("(b)", *decisions[-3:], judged.stdout, sep="\n")
    assert still_watching, decisions
    assert decisions, "the watching gate judged at least once"
    assert all(line.startswith("gate: hold at 50%") for line in decisions), decisions
    assert judged.returncode == 3, judged.stdout + judged.stderr
    assert state["enabled"] is True


def test_all_shadow_at_five_percent_fails(tmp_path: Path) -> None:
    """(c) Every order in shadow, fraud_scan diverging for 5 %: the gate fails (exit 4)."""
    with _stack(tmp_path, "fraud_scan=0.05", 100, {"shadow": 100}) as stack:
        _send(stack.sidecar, _orders(200, "c"))
        wait_until(lambda: _settled(stack.sidecar, 200), 60, "every order settled")
        judged = stack.advance()
    print("(c)", judged.stdout)
    assert judged.returncode == 4, judged.stdout + judged.stderr
    assert "  fail mismatch:fraud_scan" in judged.stdout


def test_fall_back_then_fail_orders_fail_the_gate_and_roll_back(tmp_path: Path) -> None:
    """(d) Four instant orders whose gateway always errs: 4/4, a 200 report, a rollback."""
    with _stack(tmp_path, None, 100, {"instant": 100}, scheduler=False) as stack:
        bodies = [{**body, "payment_token": "error_gw"} for body in _orders(4, "d")]
        _send(stack.sidecar, bodies)
        wait_until(
            lambda: _path(_report(stack.sidecar), "instant")["fallbacks"] == 4,
            60,
            "the instant path to hand the four orders back",
        )
        # Now the batch jobs take them, and fail them after their attempts.
        wait_until(lambda: _run_jobs(stack) and _settled(stack.sidecar, 4), 60, "four failed")
        instant = _path(_report(stack.sidecar), "instant")
        judged = stack.advance("--rollback-on-fail", "--min-orders", "4")
        state = stack.rollout()
    print("(d)", judged.stdout)
    assert (instant["orders"], instant["failed_or_fell_back"]) == (4, 4)
    assert (instant["fallbacks"], instant["outcomes"]) == (4, {"failed": 4})
    assert judged.returncode == 5, judged.stdout + judged.stderr
    assert "  fail error_rate: 4/4 = 100.00 %" in judged.stdout
    assert state["enabled"] is False


def test_a_small_clean_noise_sample_does_not_excuse_a_mismatch(tmp_path: Path) -> None:
    """(e) Noise from a few legacy orders, all repeatable, excuses no 4 % fraud mismatch."""
    with _stack(tmp_path, "fraud_scan=0.04", 50, {"shadow": 100}, noise_sample="0.3") as stack:
        _send(stack.sidecar, _orders(300, "e"))
        wait_until(lambda: _settled(stack.sidecar, 300), 60, "every order settled")
        wait_until(
            lambda: _report(stack.sidecar)["shadow"]["noise_compared"] > 0, 30, "noise compared"
        )
        report = _report(stack.sidecar)
        judged = stack.advance()
    print("(e)", judged.stdout)
    fraud = next(s for s in report["shadow"]["steps"] if s["step"] == "fraud_scan")
    assert 0 < fraud["noise"]["total"] < 200
    assert fraud["noise"]["successes"] == 0
    assert judged.returncode == 4, judged.stdout + judged.stderr
    assert "is below the minimum 200 and excuses nothing" in judged.stdout
