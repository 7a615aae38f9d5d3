"""Benchmark an instant order's latency: received -> routed and received -> terminal.

``strangler serve`` with shipped defaults (routing in its own child process, the poll at
1,000 ms) in front of the legacy simulator (its per-order API at zero added latency, batch
jobs on their default schedule), the flag at 100 % instant. Orders are created through the
sidecar's proxy (``POST /orders``) at a steady rate, after a few warm-up orders that are
not counted; each order's timestamps come from its story (``GET
/_strangler/orders/<id>``). Three cases:

- ``sqlite``: one sidecar on its SQLite ledger;
- ``postgresql``: one sidecar on a fresh PostgreSQL database;
- ``two-sidecars``: two sidecars (separate data dirs, so no shared socket) on one
  PostgreSQL database; the one receiving the orders runs ``--intake-only`` and the other
  routes them, woken by LISTEN/NOTIFY.

Targets (issue 18): routed p50 <= 3 ms and p99 <= 10 ms, terminal p50 <= 15 ms and p99
<= 40 ms. The anchor is graphile-worker, a PostgreSQL job queue that starts a job about
2 ms after it is queued (LISTEN/NOTIFY). ``--baseline REPO`` runs the same cases with
another checkout's interpreter (``REPO/.venv/bin/python``, e.g. ``/work/main`` before a
change), interleaved round by round, so a before/after comparison shares one sitting.
Results also go to bench/results/latency.json.

    .venv/bin/python bench/latency.py [--orders 200] [--rate 20] [--rounds 1]
        [--cases sqlite postgresql two-sidecars] [--baseline /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from _flags import write_flag

from strangler.demo.processes import exit_on_sigterm, free_port, running

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "latency.json"
PG_ADMIN_URL = "postgresql+psycopg://strangler:strangler@127.0.0.1:5432/strangler"
CASES = ("sqlite", "postgresql", "two-sidecars")
WARM_UP_ORDERS = 10
TERMINAL_WAIT_S = 120.0
# (p50, p99) targets in ms, from issue 18.
ROUTED_TARGET = (3.0, 10.0)
TERMINAL_TARGET = (15.0, 40.0)
TERMINAL = {"fulfilled", "rejected_fraud", "payment_declined", "failed"}


@dataclass(frozen=True)
class Version:
    """The code a run starts: its label, interpreter and working directory."""

    label: str
    python: str
    cwd: Path


@dataclass
class Run:
    """One round of one case with one version: latencies in ms and how orders ended."""

    case: str
    version: str
    routed_ms: list[float] = field(default_factory=list)
    terminal_ms: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def main() -> None:
    """Run every case for every round (interleaving versions), print the table."""
    args = _parse_args()
    versions = [Version("this checkout", sys.executable, REPO)]
    if args.baseline is not None:
        baseline = args.baseline.resolve()
        versions.insert(0, Version(f"baseline {baseline}", str(_python(baseline)), baseline))
    runs: list[Run] = []
    with ExitStack() as stack:
        tmp = str(args.keep) if args.keep else stack.enter_context(_temporary())
        for round_number in range(args.rounds):
            # Alternate who goes first, so that neither always meets a warmer machine.
            ordered = versions if round_number % 2 == 0 else versions[::-1]
            for case in args.cases:
                for version in ordered:
                    work = Path(tmp) / f"{case}-{round_number}-{len(runs)}"
                    work.mkdir(parents=True)
                    runs.append(_run(case, version, work, args))
    _print(runs, args, versions)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(run) for run in runs], indent=2))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="orders measured per run")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="a server to create databases on")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout to compare with (its .venv is used)"
    )
    parser.add_argument("--keep", type=Path, help="keep the runs' logs and data in this folder")
    args = parser.parse_args()
    if args.orders < 1 or args.rate <= 0 or args.rounds < 1:
        parser.error("--orders, --rate and --rounds must be positive")
    return args


def _python(checkout: Path) -> Path:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        sys.exit(f"--baseline {checkout}: no interpreter at {python} (run make there first)")
    return python


def _run(case: str, version: Version, work: Path, args: argparse.Namespace) -> Run:
    print(f"latency: {case} with {version.label} ...", file=sys.stderr, flush=True)
    with ExitStack() as stack:
        sim = stack.enter_context(_simulator(version, work))
        ledger_url = None
        if case != "sqlite":
            ledger_url = stack.enter_context(_pg_database(args.pg_url))
            if ledger_url is None:
                return Run(case, version.label, outcomes={"skipped: PostgreSQL unreachable": 1})
        if case == "two-sidecars":
            routing = stack.enter_context(_sidecar(version, work, sim, ledger_url, "routing"))
            receiving = stack.enter_context(
                _sidecar(version, work, sim, ledger_url, "receiving", "--intake-only")
            )
        else:
            routing = receiving = stack.enter_context(
                _sidecar(version, work, sim, ledger_url, "sidecar")
            )
        with requests.Session() as session:
            warm = _send(session, receiving, WARM_UP_ORDERS, args.rate)
            _stories(session, routing, warm)
            order_ids = _send(session, receiving, args.orders, args.rate)
            return _measured(case, version.label, _stories(session, routing, order_ids))


@contextmanager
def _temporary() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="strangler-latency-") as tmp:
        yield tmp


@contextmanager
def _simulator(version: Version, work: Path) -> Iterator[str]:
    port = free_port()
    command = [
        version.python,
        "-m",
        "strangler",
        "legacy-sim",
        "--port",
        str(port),
        "--db",
        str(work / "sim.sqlite3"),
        "--log-format",
        "json",
    ]
    base = f"http://127.0.0.1:{port}"
    log = work / "sim.log"
    with running(command, ready_url=f"{base}/healthz", log_path=log, cwd=version.cwd, grace_s=15):
        yield base


@contextmanager
def _pg_database(admin_url: str) -> Iterator[str | None]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"strangler_latency_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _sidecar(
    version: Version, work: Path, sim: str, ledger_url: str | None, name: str, *args: str
) -> Iterator[str]:
    """``strangler serve`` with shipped defaults but for its ports, data dir and flag."""
    port = free_port()
    data = work / name
    data.mkdir()
    flags = write_flag(data / "flags.json", rollout=100)
    env = {
        "STRANGLER_DATA_DIR": str(data),
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": sim,
        "STRANGLER_LEGACY_URL": sim,
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_LOG_FORMAT": "json",
        **({"STRANGLER_LEDGER_URL": ledger_url} if ledger_url else {}),
    }
    base = f"http://127.0.0.1:{port}"
    command = [version.python, "-m", "strangler", "serve", *args]
    with running(
        command,
        ready_url=f"{base}/_strangler/readyz",
        log_path=data / "sidecar.log",
        env=env,
        cwd=version.cwd,
        timeout_s=90,
        grace_s=30,
    ):
        yield base


def _send(session: requests.Session, sidecar: str, count: int, rate: float) -> list[str]:
    """Create ``count`` orders through the sidecar's proxy, one every 1/rate s."""
    order_ids = []
    started = time.monotonic()
    for number in range(count):
        pause = started + number / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        answer = session.post(f"{sidecar}/orders", json=_body(), timeout=10)
        answer.raise_for_status()
        order_ids.append(answer.json()["order_id"])
    return order_ids


def _body() -> dict[str, object]:
    return {
        "user_guid": f"bench-{uuid.uuid4().hex[:8]}",
        "unit_id": "unit-1",
        "city": "new-york",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token": "tok_bench_4242",
    }


def _stories(
    session: requests.Session, sidecar: str, order_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Each order's story once it is terminal (or as it is when the wait runs out)."""
    deadline = time.monotonic() + TERMINAL_WAIT_S
    stories = []
    for order_id in order_ids:
        while True:
            answer = session.get(f"{sidecar}/_strangler/orders/{order_id}", timeout=10)
            story = answer.json() if answer.ok else {"status": f"HTTP {answer.status_code}"}
            if story.get("status") in TERMINAL or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        stories.append(story)
    return stories


def _measured(case: str, version: str, stories: list[dict[str, Any]]) -> Run:
    run = Run(case, version)
    outcomes: Counter[str] = Counter()
    for story in stories:
        times = story.get("timestamps") or {}
        outcomes[_outcome(story)] += 1
        received = _at(times.get("received"))
        routed = _at(times.get("routed"))
        terminal = _at(times.get("terminal"))
        if received is None:
            continue
        if routed is not None:
            run.routed_ms.append((routed - received).total_seconds() * 1000)
        if terminal is not None:
            run.terminal_ms.append((terminal - received).total_seconds() * 1000)
    run.outcomes = dict(outcomes)
    return run


def _outcome(story: dict[str, Any]) -> str:
    status = str(story.get("status"))
    path = (story.get("decision") or {}).get("path")
    if story.get("handoff"):
        return f"{path or '?'}: {status}, handed to legacy ({story['handoff']})"
    return f"{path or 'undecided'}: {status}"


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0..1), None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, round(share * len(ranked) + 0.5) - 1))]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _print(runs: list[Run], args: argparse.Namespace, versions: list[Version]) -> None:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"latency: {args.orders} orders at {args.rate:g}/s per run (after {WARM_UP_ORDERS} "
        f"warm-up orders), rollout 100 % instant, shipped defaults, {args.rounds} round(s); "
        f"load average {load}"
    )
    print("percentiles over every round's orders, in ms from received")
    header = ("case", "version", "orders", "routed p50", "p99", "terminal p50", "p99", "verdict")
    rows = [header, ("target", "", "", *_targets(), "")]
    for case in args.cases:
        for version in versions:
            mine = [run for run in runs if run.case == case and run.version == version.label]
            rows.append(_row(case, version.label, mine))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print("how the orders ended (all rounds):")
    for case in args.cases:
        for version in versions:
            outcomes: Counter[str] = Counter()
            for run in runs:
                if run.case == case and run.version == version.label:
                    outcomes.update(run.outcomes)
            listed = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
            print(f"  {case}, {version.label}: {listed}")
    if args.rounds > 1:
        print("per-round routed p50 (ms):")
        for run in runs:
            print(f"  {run.case}, {run.version}: {_ms(_percentile(run.routed_ms, 0.5))}")


def _targets() -> tuple[str, str, str, str]:
    return (
        f"<= {ROUTED_TARGET[0]:g}",
        f"<= {ROUTED_TARGET[1]:g}",
        f"<= {TERMINAL_TARGET[0]:g}",
        f"<= {TERMINAL_TARGET[1]:g}",
    )


def _row(case: str, version: str, runs: list[Run]) -> tuple[str, ...]:
    routed = [value for run in runs for value in run.routed_ms]
    terminal = [value for run in runs for value in run.terminal_ms]
    figures = (
        _percentile(routed, 0.5),
        _percentile(routed, 0.99),
        _percentile(terminal, 0.5),
        _percentile(terminal, 0.99),
    )
    limits = (*ROUTED_TARGET, *TERMINAL_TARGET)
    met = all(f is not None and f <= limit for f, limit in zip(figures, limits, strict=True))
    verdict = "meets" if met else "misses"
    if not routed:
        verdict = "no data" if not any(run.outcomes for run in runs) else "skipped"
    return (case, version, str(len(routed)), *(_ms(f) for f in figures), verdict)


if __name__ == "__main__":
    exit_on_sigterm()
    main()
