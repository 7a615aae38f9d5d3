"""``strangler demo``: the whole migration on one machine, end to end, with real processes.

It starts the legacy simulator and the sidecar on free loopback ports, sets the rollout
through the sidecar's admin API, sends a stream of orders through the sidecar as the
order service's clients would, waits (with a progress bar) until every order is terminal
and every shadow order is compared, accounts for every order from the ledger and from the
legacy app's own records, writes the HTML comparison report, lets the rollout gate judge
the run, and ends with a headline: speed-up, accounting, shadow mismatches.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from strangler.demo.processes import free_port, running
from strangler.demo.summary import DemoSummary, ShadowCounts, headline, summarize
from strangler.flags import flag_source_from_settings
from strangler.ledger import ledger_from_url
from strangler.orders import OrderNotification, Route
from strangler.report.render_html import render_html
from strangler.report.report import Report
from strangler.report.verdict import Thresholds
from strangler.rollout.controller import FileRolloutController
from strangler.rollout.gate import GateRound, gate_round
from strangler.rollout.policy import GatePolicy
from strangler.settings import Settings
from strangler.sim.traffic import synthetic_orders

__all__ = ["DemoOptions", "DemoRun", "Progress", "ProgressBar", "run_demo"]


class ProgressBar(Protocol):
    """A progress bar the demo advances (click's, in ``strangler demo``)."""

    def update(self, n_steps: int) -> None:
        """Advance the bar by ``n_steps``."""


Progress = Callable[[int, str], AbstractContextManager[ProgressBar]]
"""Opens a progress bar of a given length and label."""

_HTTP_TIMEOUT_S = 5.0
_FLAG_SAMPLE = 10_000


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo runs: how many orders, at which rollout, with which job interval."""

    orders: int = 300
    rollout: int = 50
    variants: Mapping[str, int] = field(default_factory=lambda: {"instant": 80, "shadow": 20})
    job_interval_s: float = 2.0
    rate_per_s: float = 50.0
    concurrency: int = 8
    seed: int = 7
    timeout_s: float = 180.0
    workdir: Path | None = None
    keep_workdir: bool = False
    api_divergence: str | None = None
    report_path: Path = Path("strangler-demo-report.html")
    gate_plan: tuple[int, ...] = (1, 5, 25, 50, 100)
    gate_min_orders: int = 100


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What a demo run saw: the accounting, each order's ledger story and legacy record."""

    summary: DemoSummary
    stories: Mapping[str, Mapping[str, Any]]
    legacy_orders: Mapping[str, Mapping[str, Any]]
    report: Report | None = None
    gate: GateRound | None = None
    headline: str = ""


def run_demo(
    options: DemoOptions,
    settings: Settings,
    echo: Callable[[str], None],
    progress: Progress,
) -> DemoRun:
    """Run the end-to-end demo and return what it saw; every process is stopped after."""
    with ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(_temp_dir(options.keep_workdir)))
        flags_file = workdir / "flags.json"
        shutil.copyfile(settings.flags_file, flags_file)
        echo(f"work dir: {workdir}")
        _flag_check(settings.replace(flags_file=flags_file, data_dir=workdir), echo)
        legacy_url = stack.enter_context(_legacy_simulator(workdir, options))
        echo(f"legacy simulator: {legacy_url} (batch jobs every {options.job_interval_s:g}s)")
        token = secrets.token_urlsafe(24)
        sidecar_url = stack.enter_context(_sidecar(workdir, flags_file, legacy_url, token))
        echo(f"sidecar: {sidecar_url} (upstream and legacy app: the simulator)")
        session = stack.enter_context(requests.Session())
        _set_rollout(session, sidecar_url, token, options, echo)
        started = time.monotonic()
        order_ids = _send_orders(session, sidecar_url, options)
        elapsed = time.monotonic() - started
        echo(
            f"sent {len(order_ids)} orders through the sidecar in {elapsed:.1f}s "
            f"(paced at {options.rate_per_s:g}/s, as an order service would)"
        )
        stories = _wait_until_terminal(session, sidecar_url, order_ids, options, progress)
        shadow_ids = [oid for oid, story in stories.items() if _path_of(story) == "shadow"]
        _wait_until_compared(session, sidecar_url, len(shadow_ids), options, progress)
        legacy_orders = _legacy_records(session, legacy_url, order_ids)
        demo_settings = settings.replace(flags_file=flags_file, data_dir=workdir)
        report, gate = _judge(demo_settings, options, echo)
    summary = summarize(order_ids, stories, legacy_orders)
    for line in summary.lines():
        echo(line)
    judged = (gate.decision, gate.evaluation.checks) if gate is not None else None
    line = headline(summary, _shadow_counts(report), judged)
    echo(line)
    return DemoRun(summary, stories, legacy_orders, report, gate, line)


def _judge(
    settings: Settings, options: DemoOptions, echo: Callable[[str], None]
) -> tuple[Report, GateRound]:
    """Let the rollout gate judge the run, then write the HTML report (gate event included)."""
    ledger = ledger_from_url(settings.effective_ledger_url)
    try:
        controller = FileRolloutController(
            settings.flags_file, settings.audit_log, flag_name=settings.flag_name
        )
        policy = GatePolicy(
            options.gate_plan, min_orders=options.gate_min_orders, rollback_on_fail=True
        )
        thresholds = Thresholds(min_orders=options.gate_min_orders)
        gate = gate_round(controller, ledger, policy, thresholds, actor="demo")
        echo(f"rollout gate: {gate.decision.action}: {gate.decision.reason}")
        report = ledger.report(thresholds=thresholds)
    finally:
        ledger.close()
    options.report_path.write_text(render_html(report, gate.report), encoding="utf-8")
    echo(f"HTML report: {options.report_path.resolve()}")
    return report, gate


def _shadow_counts(report: Report | None) -> ShadowCounts | None:
    if report is None:
        return None
    shadow = report.shadow
    return ShadowCounts(
        compared=shadow.compared,
        mismatched_orders=shadow.mismatched_orders.successes,
        not_compared=shadow.not_compared,
        steps={step.step: (step.shadow.successes, step.shadow.total) for step in shadow.steps},
    )


def _path_of(story: Mapping[str, Any]) -> str | None:
    decision = story.get("decision") or {}
    path: str | None = decision.get("path")
    return path


def _flag_check(settings: Settings, echo: Callable[[str], None]) -> None:
    source = flag_source_from_settings(settings)
    try:
        orders = [
            OrderNotification.from_dict(body)
            for body in synthetic_orders(_FLAG_SAMPLE, seed=1, prefix="flagcheck")
        ]
        started = time.perf_counter()
        paths = [source.decide(order).path for order in orders]
        elapsed = time.perf_counter() - started
    finally:
        source.close()
    split = {path: paths.count(path) for path in Route}
    shares = ", ".join(f"{path.value} {count / len(paths):.1%}" for path, count in split.items())
    echo(
        f"flag check: {len(paths):,} synthetic orders at the shipped rollout -> {shares} "
        f"({len(paths) / elapsed:,.0f} decisions/s)"
    )


def _set_rollout(
    session: requests.Session,
    sidecar_url: str,
    token: str,
    options: DemoOptions,
    echo: Callable[[str], None],
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # The demo's ledger is new, so there is no comparison evidence to go live on: it says
    # so (no_evidence, recorded on the timeline) where a real rollout walks off -> shadow
    # -> live with the gate (README, "Your first rollout").
    changes = (
        {"variants": dict(options.variants), "reason": "demo: split of the new side"},
        {
            "percentage": options.rollout,
            "reason": "demo: raise the rollout (new ledger, nothing compared yet)",
            "no_evidence": True,
        },
    )
    stage = "?"
    for change in changes:
        answer = session.put(
            f"{sidecar_url}/_strangler/rollout", json=change, headers=headers, timeout=5
        )
        answer.raise_for_status()
        stage = answer.json().get("stage", stage)
    probe = {"order_id": "probe", "user_guid": "probe", "unit_id": "probe"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = session.get(f"{sidecar_url}/_strangler/decide", params=probe, timeout=5).json()
        if seen.get("rollout") == options.rollout:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the sidecar did not pick up the rollout change within 10 s")
    weights = ", ".join(f"{name} {weight}%" for name, weight in options.variants.items())
    echo(
        f"rollout: shipped flag at stage off (shadow-first); the demo sets stage {stage}: "
        f"{options.rollout}% of users on the new side ({weights}), via the admin API, "
        "without comparison evidence (a new ledger)"
    )


def _send_orders(session: requests.Session, sidecar_url: str, options: DemoOptions) -> list[str]:
    bodies = list(synthetic_orders(options.orders, seed=options.seed))
    start = time.monotonic()

    def send(numbered: tuple[int, dict[str, Any]]) -> str:
        index, body = numbered
        time.sleep(max(0.0, start + index / options.rate_per_s - time.monotonic()))
        answer = session.post(f"{sidecar_url}/orders", json=body, timeout=_HTTP_TIMEOUT_S)
        answer.raise_for_status()
        return str(answer.json()["order_id"])

    with ThreadPoolExecutor(options.concurrency) as pool:
        return list(pool.map(send, enumerate(bodies)))


def _wait_until_terminal(
    session: requests.Session,
    sidecar_url: str,
    order_ids: Sequence[str],
    options: DemoOptions,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    stories: dict[str, dict[str, Any]] = {}
    pending = set(order_ids)
    deadline = time.monotonic() + options.timeout_s
    with (
        ThreadPoolExecutor(options.concurrency) as pool,
        progress(len(order_ids), "orders terminal  ") as bar,
    ):
        while pending and time.monotonic() < deadline:
            for story in pool.map(lambda oid: _story(session, sidecar_url, oid), sorted(pending)):
                if story is not None:
                    stories[story["order_id"]] = story
                    if story["status"] in _TERMINAL:
                        pending.discard(story["order_id"])
                        bar.update(1)
            if pending:
                time.sleep(0.5)
    return stories


def _wait_until_compared(
    session: requests.Session,
    sidecar_url: str,
    shadow_orders: int,
    options: DemoOptions,
    progress: Progress,
) -> None:
    """Wait until every shadow order is compared or counted as not compared.

    Legacy's side of a shadow order arrives through the follower after the batch jobs
    finish it, so this is later than "every order terminal".
    """
    deadline = time.monotonic() + options.timeout_s
    done = 0
    with progress(shadow_orders, "shadow compared  ") as bar:
        while done < shadow_orders and time.monotonic() < deadline:
            answer = session.get(
                f"{sidecar_url}/_strangler/report",
                params={"examples": 0},
                timeout=_HTTP_TIMEOUT_S,
            )
            answer.raise_for_status()
            shadow = answer.json()["shadow"]
            now = min(shadow_orders, shadow["compared"] + shadow["not_compared"])
            bar.update(now - done)
            done = now
            if done < shadow_orders:
                time.sleep(0.5)


_TERMINAL = frozenset({"fulfilled", "rejected_fraud", "payment_declined", "failed"})


def _story(session: requests.Session, sidecar_url: str, order_id: str) -> dict[str, Any] | None:
    answer = session.get(f"{sidecar_url}/_strangler/orders/{order_id}", timeout=_HTTP_TIMEOUT_S)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    story: dict[str, Any] = answer.json()
    return story


def _legacy_records(
    session: requests.Session, legacy_url: str, order_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for order_id in order_ids:
        answer = session.get(f"{legacy_url}/orders/{order_id}", timeout=_HTTP_TIMEOUT_S)
        if answer.ok:
            records[order_id] = answer.json()
    return records


@contextmanager
def _temp_dir(keep: bool) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="strangler-demo-")
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _legacy_simulator(workdir: Path, options: DemoOptions) -> Iterator[str]:
    port = free_port()
    args = [
        "legacy-sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(workdir / "legacy.sqlite3"),
        "--job-interval",
        str(options.job_interval_s),
        "--seed",
        str(options.seed),
    ]
    if options.api_divergence:
        args += ["--api-divergence", options.api_divergence]
    url = f"http://127.0.0.1:{port}"
    with _service(args, f"{url}/jobs", workdir / "legacy-sim.log", {}):
        yield url


@contextmanager
def _sidecar(workdir: Path, flags_file: Path, legacy_url: str, token: str) -> Iterator[str]:
    port = free_port()
    env = {
        "STRANGLER_DATA_DIR": str(workdir),
        "STRANGLER_FLAGS_FILE": str(flags_file),
        "STRANGLER_UPSTREAM_URL": legacy_url,
        "STRANGLER_LEGACY_URL": legacy_url,
        "STRANGLER_ADMIN_TOKEN": token,
        "STRANGLER_LOG_FORMAT": "json",
    }
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with _service(args, f"{url}/_strangler/healthz", workdir / "sidecar.log", env):
        yield url


def _service(
    args: Sequence[str], ready_url: str, log_path: Path, env: Mapping[str, str]
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return running(
        [sys.executable, "-m", "strangler", *args],
        ready_url=ready_url,
        log_path=log_path,
        env=env,
    )
