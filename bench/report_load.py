"""Benchmark the intake while reports run over a big SQLite ledger (issue 18, section 3).

Fills a SQLite ledger with ``--orders`` ended orders in bulk SQL (seconds, not minutes:
strangler.ledger.synthetic), then runs ``strangler serve`` on it with shipped defaults
(routing in its own child process; rollout 0 %, so every order is routed to legacy).
The set-ups, interleaved round by round so that the machine's drift hits each alike, their
order rotated each round, each starting once no order of the set-up before needs routing
(the wait is printed) and the WAL is checkpointed into the database file and truncated (a
set-up would otherwise pay for what the one before left: with the order only rotated, the
gate loop always followed a report loop and paid for its WAL):

- ``no report``: the intake alone;
- ``report loop``: ``GET /_strangler/report?until=<now>`` back to back (a new query each
  time, so never from the sidecar's cache): the report in its read-only snapshot,
  computed by the sidecar's report child at nice +10 (strangler.sidecar.report_process);
- ``gate loop``: ``GET /_strangler/gate`` back to back (each with another
  ``min_orders``, so never from the cache): the gate's verdict over its step window (here
  every order: the filled ledger has no rollout change), computed by the same child;
- ``report loop, other process``: the same report from this process, through the
  ledger's own engine at the normal priority: the same snapshot, in another process,
  which separates what the report costs the sidecar's process from what it costs SQLite;
- ``CLI report loop (nice +10)``: ``strangler report --format json`` run back to back as
  a command, with its defaults (on SQLite it computes at nice +10);
- ``CLI report loop, --normal-priority``: the same at the normal priority;
- ``locked report loop (before)``: the same report from this process through an engine
  that opens its transactions with ``BEGIN IMMEDIATE``, as every report did before
  (holding SQLite's write lock for the whole report): the anchor.

In each, order notifications arrive at ``--rate`` a second (an open-loop schedule, one
unique order each) for ``--seconds``: intake p50 / p99 / max and refusals; then wrk
saturates the intake with 4 connections for ``--saturate-seconds``: throughput and
p50 / p99. Report times are the loop's own (median, max) and a report with nothing
else running. Targets: intake p99 <= 20 ms at 200/s with a report loop, nothing
refused. The load average before and after is printed: on a shared machine, compare
set-ups within one run (their ratio), not runs. ``--no-anchor`` leaves the locked loop
out (it stalls the intake ~10 s a round); ``--setups`` runs only the named ones (an A/B
run of the gate loop against an older package: ``<its python> bench/report_load.py
--setups "no report;report loop;gate loop"``). Results also go to
bench/results/report_load.json.

    .venv/bin/python bench/report_load.py [--orders 1000000] [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _load import Result, have, python_load, wrk

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.ledger import ledger_from_url
from strangler.ledger.engine import create_ledger_engine
from strangler.ledger.report_queries import load_report
from strangler.ledger.schema import orders as orders_table
from strangler.ledger.synthetic import fill_history

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "report_load.json"
TOKEN = secrets.token_urlsafe(16)
ENDPOINT = "/_strangler/notifications"
SENDERS = 32
# A paced run sends nothing later than this past its schedule: a stuck intake (the locked
# set-up) would otherwise hold the bench for minutes. What was not sent is counted.
GRACE_S = 10.0
SETTLE_CAP_S = 120.0  # the longest wait for the previous set-up's orders to be routed
UNSENT = 0
SATURATE_CONNECTIONS = 4
P99_TARGET_MS = 20.0
SETUPS = (
    "no report",
    "report loop",
    "gate loop",
    "report loop, other process",
    "CLI report loop (nice +10)",
    "CLI report loop, --normal-priority",
    "locked report loop (before)",
)
LOCKED = SETUPS[-1]
_LUA = """
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"order_id":"%(prefix)s-%%d","user_guid":"u-%%d","unit_id":"unit-1"}',
    counter, counter %% 997)
  return wrk.format("POST", "%(endpoint)s",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}, body)
end
"""


@dataclass
class Paced:
    """One paced run: each notification's latency (s) and status."""

    latencies: list[float]
    statuses: list[int]
    seconds: float

    def summary(self) -> dict[str, float]:
        """p50, p99, max (ms) of what was sent, the rate answered 2xx, refused and unsent."""
        sent = [s for s, status in zip(self.latencies, self.statuses, strict=True) if status]
        ordered = sorted(sent)
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        return {
            "p50_ms": cuts[49] * 1000,
            "p99_ms": cuts[98] * 1000,
            "max_ms": ordered[-1] * 1000,
            "rate": sum(1 for s in self.statuses if 200 <= s < 300) / self.seconds,
            "refused": sum(1 for status in self.statuses if status >= 300),
            "unsent": sum(1 for status in self.statuses if status == UNSENT),
        }


@dataclass
class Setup:
    """What one set-up measured over the rounds."""

    paced: list[dict[str, float]] = field(default_factory=list)
    saturated: list[Result] = field(default_factory=list)
    reports_s: list[float] = field(default_factory=list)
    settle_s: list[float] = field(default_factory=list)  # waited for the backlog before it
    # CPU seconds spent during the set-up's runs, by process: see _cpu_by_role.
    cpu_s: dict[str, float] = field(default_factory=dict)


def main() -> None:
    """Fill, serve, run the set-ups round by round, print the tables."""
    args = _parse_args()
    chosen = args.setups.split(";") if args.setups else SETUPS
    names = [name for name in SETUPS if name in chosen and not (args.no_anchor and name == LOCKED)]
    setups = {name: Setup() for name in names}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="strangler-report-load-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'ledger.sqlite3'}"
        fill_s = _fill(url, args.orders)
        with _sidecar(work, url) as (base, root):
            alone_s = [_sidecar_report(base) for _ in range(2)]
            engines = (create_ledger_engine(url), _locked_engine(url))
            try:
                for round_no in range(args.rounds):
                    # Rotated each round, and each once the orders of the one before are
                    # routed and the WAL is emptied: a set-up would otherwise pay for what
                    # the one before it left.
                    for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                        setups[name].settle_s.append(_settle(engines[0]))
                        before = _cpu_by_role(root)
                        _one(setups[name], name, (base, work, url), engines, args, f"r{round_no}")
                        _add_cpu(setups[name].cpu_s, before, _cpu_by_role(root))
            finally:
                for engine in engines:
                    engine.dispose()
    _print(args, fill_s, alone_s, setups, (load_before, os.getloadavg()))


def _settle(engine: sa.Engine) -> float:
    """Wait until no order needs routing (at most SETTLE_CAP_S), then empty the WAL.

    Returns the seconds waited for the routing backlog the set-up before may have left
    (its saturating run takes thousands of orders in within seconds).
    """
    started = time.perf_counter()
    due = sa.select(sa.literal(1)).where(orders_table.c.needs_dispatch).limit(1)
    while time.perf_counter() - started < SETTLE_CAP_S:
        with engine.connect() as conn:
            if conn.execute(due).first() is None:
                break
        time.sleep(0.2)
    waited = time.perf_counter() - started
    _empty_wal(engine)
    return waited


def _empty_wal(engine: sa.Engine) -> None:
    """Checkpoint the whole WAL into the database file and truncate it (waits on writers).

    Through SQLite itself: a file of the ledger opened and closed any other way would drop
    the locks this process's connections hold on it.
    """
    connection = engine.raw_connection()  # no transaction around it: a checkpoint runs alone
    try:
        connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        connection.close()


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="ledger history")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every set-up")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced run length")
    parser.add_argument("--rate", type=float, default=200.0, help="paced notifications/s")
    parser.add_argument("--saturate-seconds", type=float, default=4.0, help="wrk run length")
    parser.add_argument(
        "--no-anchor",
        action="store_true",
        help="skip the locked report loop (the anchor stalls the intake for ~10 s a round)",
    )
    parser.add_argument(
        "--setups",
        help="only these set-ups, by name separated by semicolons (default: all); 'no report', "
        "'report loop' and 'gate loop' run against any strangler of issue 18 on (an A/B run)",
    )
    args = parser.parse_args()
    unknown = set(args.setups.split(";")) - set(SETUPS) if args.setups else set()
    if unknown:
        parser.error(f"unknown --setups {sorted(unknown)}; known: {list(SETUPS)}")
    if args.orders < 1 or args.rounds < 1 or args.seconds <= 0 or args.rate <= 0:
        parser.error("--orders, --rounds, --seconds and --rate must be positive")
    return args


def _fill(url: str, orders: int) -> float:
    started = time.perf_counter()
    ledger = ledger_from_url(url)
    try:
        fill_history(ledger.engine, orders, until=datetime.now(UTC))
    finally:
        ledger.close()
    return time.perf_counter() - started


@contextmanager
def _sidecar(work: Path, ledger_url: str) -> Iterator[tuple[str, int]]:
    """``strangler serve`` with shipped defaults on the filled ledger; yields URL and pid."""
    data = work / "sidecar"
    data.mkdir()
    flags = data / "flags.json"
    shutil.copy(REPO / "flags" / "city_orders_instant_processing.json", flags)
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "STRANGLER_DATA_DIR": str(data),
        "STRANGLER_LEDGER_URL": ledger_url,
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": dead,
        "STRANGLER_LEGACY_URL": dead,
        "STRANGLER_ADMIN_TOKEN": TOKEN,
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_LOG_FORMAT": "json",
    }
    url = f"http://127.0.0.1:{port}"
    with running(
        [sys.executable, "-m", "strangler", "serve"],
        ready_url=f"{url}/_strangler/healthz",
        log_path=data / "sidecar.log",
        env=env,
    ) as process:
        yield url, process.pid


_TICKS = os.sysconf("SC_CLK_TCK")
# strangler serve's tree: the supervisor, its routing child (depth 1) and gunicorn's master
# (depth 1), whose worker (depth 2) takes the orders in; the report child is the worker's.
_WORKER_DEPTH = 2


def _stat(pid: int) -> tuple[int, float] | None:
    """A process's parent and CPU seconds (user + system), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _cpu_by_role(root: int) -> dict[tuple[str, int], float]:
    """CPU seconds so far of ``root``'s HTTP worker(s) and report child(ren), by (role, pid)."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    parents = {pid: stat[0] for pid, stat in stats.items() if stat is not None}
    found: dict[tuple[str, int], float] = {}
    for pid, stat in stats.items():
        depth, up = 0, pid
        while up in parents and up != root:
            up, depth = parents[up], depth + 1
        if up != root or stat is None:
            continue
        if depth == _WORKER_DEPTH:
            found[("worker", pid)] = stat[1]
        elif depth == _WORKER_DEPTH + 1:
            found[("report child", pid)] = stat[1]
    return found


def _add_cpu(
    total: dict[str, float],
    before: dict[tuple[str, int], float],
    after: dict[tuple[str, int], float],
) -> None:
    """Add each role's CPU seconds between two snapshots (a process started since from 0)."""
    for (role, pid), seconds in after.items():
        total[role] = total.get(role, 0.0) + seconds - before.get((role, pid), 0.0)


def _locked_engine(url: str) -> sa.Engine:
    """An engine whose every transaction is ``BEGIN IMMEDIATE``: the report as it was."""
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 5000")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sidecar_report(base: str) -> float:
    """One report from the sidecar, up to now (never from its cache); seconds."""
    started = time.perf_counter()
    until = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=120)
    try:
        conn.request("GET", f"/_strangler/report?examples=0&until={until}")
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"the report answered {answer.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


_GATE_QUERIES = itertools.count(1)
# What the gate may answer: an outcome (200 and its others), never an error.
_GATE_OUTCOMES = frozenset({200, 409, 412, 423})


def _sidecar_gate(base: str) -> float:
    """One gate verdict from the sidecar (another min_orders each time: never cached)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=120)
    try:
        conn.request("GET", f"/_strangler/gate?min_orders={next(_GATE_QUERIES)}")
        answer = conn.getresponse()
        answer.read()
        if answer.status not in _GATE_OUTCOMES:
            raise SystemExit(f"the gate answered {answer.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


def _cli_report(work: Path, ledger_url: str, *extra: str) -> float:
    """``strangler report --format json`` as a command on the ledger; seconds, start included."""
    env = {
        **os.environ,
        "STRANGLER_LEDGER_URL": ledger_url,
        "STRANGLER_DATA_DIR": str(work / "sidecar"),
        "STRANGLER_FLAGS_FILE": str(work / "sidecar" / "flags.json"),
    }
    command = [sys.executable, "-m", "strangler", "report", "--format", "json", "--examples"]
    started = time.perf_counter()
    subprocess.run(
        [*command, "0", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=600,
    )
    return time.perf_counter() - started


def _report_here(engine: sa.Engine) -> float:
    started = time.perf_counter()
    load_report(engine, examples=0)
    return time.perf_counter() - started


@contextmanager
def _loop(report: Callable[[], float] | None, times: list[float]) -> Iterator[None]:
    """Reports back to back on a thread while the block runs (none when ``report`` is None)."""
    if report is None:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            times.append(report())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the first report is under way before the load starts
        yield
    finally:
        stop.set()
        thread.join()


def _one(
    setup: Setup,
    name: str,
    where: tuple[str, Path, str],
    engines: tuple[sa.Engine, sa.Engine],
    args: argparse.Namespace,
    tag: str,
) -> None:
    base, work, url = where
    ledger, locked = engines
    report = {
        "no report": None,
        "report loop": lambda: _sidecar_report(base),
        "gate loop": lambda: _sidecar_gate(base),
        "report loop, other process": lambda: _report_here(ledger),
        "CLI report loop (nice +10)": lambda: _cli_report(work, url),
        "CLI report loop, --normal-priority": lambda: _cli_report(work, url, "--normal-priority"),
        "locked report loop (before)": lambda: _report_here(locked),
    }[name]
    prefix = f"{tag}-{SETUPS.index(name)}-{secrets.token_hex(3)}"
    with _loop(report, setup.reports_s):
        setup.paced.append(_paced(base, args.rate, args.seconds, prefix).summary())
        setup.saturated.append(_saturate(base, args.saturate_seconds, prefix + "-s"))


def _paced(base: str, rate: float, seconds: float, prefix: str) -> Paced:
    """Unique notifications at ``rate`` a second on an open-loop schedule."""
    port = int(base.rsplit(":", 1)[1])
    local = threading.local()
    count = int(rate * seconds)
    start = time.perf_counter() + 0.05
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def send(n: int) -> tuple[float, int]:
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if delay < -GRACE_S:
            return 0.0, UNSENT
        conn = getattr(local, "conn", None) or http.client.HTTPConnection(
            "127.0.0.1", port, timeout=30
        )
        local.conn = conn
        body = json.dumps({"order_id": f"{prefix}-{n}", "user_guid": f"u-{n}", "unit_id": "u"})
        sent = time.perf_counter()
        try:
            conn.request("POST", ENDPOINT, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            conn.close()
            local.conn = None
            status = 599
        return time.perf_counter() - sent, status

    begun = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        results = list(pool.map(send, range(count)))
    return Paced([r[0] for r in results], [r[1] for r in results], time.perf_counter() - begun)


def _saturate(base: str, seconds: float, prefix: str) -> Result:
    if have("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_LUA % {"prefix": prefix, "endpoint": ENDPOINT, "token": TOKEN})
        try:
            return wrk(base + ENDPOINT, SATURATE_CONNECTIONS, seconds, script=Path(script.name))
        finally:
            Path(script.name).unlink()

    def make(thread: int, n: int) -> tuple[str, str, bytes, dict[str, str]]:
        body = json.dumps({"order_id": f"{prefix}-{thread}-{n}", "user_guid": "u", "unit_id": "u"})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        return "POST", ENDPOINT, body.encode(), headers

    return python_load(base, SATURATE_CONNECTIONS, seconds, max_requests=20_000, make=make)


def _ratio(summary: dict[str, Any], top: str, bottom: str) -> float:
    """The intake's paced p99 under ``top`` over that under ``bottom``."""
    return float(
        summary[top]["paced_median_of_rounds"]["p99_ms"]
        / summary[bottom]["paced_median_of_rounds"]["p99_ms"]
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print(
    args: argparse.Namespace,
    fill_s: float,
    alone_s: list[float],
    setups: dict[str, Setup],
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    load = "wrk" if have("wrk") else "python load generator (wrk not installed)"
    print(
        f"intake under a report loop: SQLite ledger of {args.orders:,} orders (filled in "
        f"{fill_s:.1f} s), strangler serve with shipped defaults; {args.rounds} rounds, "
        f"set-ups interleaved; paced {args.rate:g}/s for {args.seconds:g} s, then {load} "
        f"with {SATURATE_CONNECTIONS} connections for {args.saturate_seconds:g} s"
    )
    print(f"a report alone (nothing else running): {_median(alone_s):.2f} s median")
    print(
        "load average (1, 5, 15 min) before / after: "
        + " / ".join(", ".join(f"{x:.1f}" for x in load) for load in loads)
    )
    print()
    print(
        f"{'set-up':<36}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>9}{'refused':>8}{'unsent':>8}"
        f"{'sat/s':>8}{'sat p99':>9}{'reports':>8}{'report s':>9}{'wkr cpu':>8}{'child cpu':>10}"
    )
    summary: dict[str, Any] = {}
    for name, setup in setups.items():
        paced = {key: _median([p[key] for p in setup.paced]) for key in setup.paced[0]}
        refused = sum(p["refused"] for p in setup.paced)
        unsent = sum(p["unsent"] for p in setup.paced)
        sat = _median([r.rps for r in setup.saturated])
        sat_p99 = _median([r.p99_ms for r in setup.saturated])
        report_s = _median(setup.reports_s)
        rounds = len(setup.paced)
        worker_cpu = setup.cpu_s.get("worker", 0.0) / rounds
        child_cpu = setup.cpu_s.get("report child", 0.0) / rounds
        print(
            f"{name:<36}{paced['p50_ms']:>8.1f}{paced['p99_ms']:>8.1f}{paced['max_ms']:>9.0f}"
            f"{refused:>8}{unsent:>8}{sat:>8.0f}{sat_p99:>9.1f}{len(setup.reports_s):>8}{report_s:>9.2f}"
            f"{worker_cpu:>8.1f}{child_cpu:>10.1f}"
        )
        summary[name] = {
            "paced_median_of_rounds": paced,
            "refused_total": refused,
            "unsent_total": unsent,
            "saturated_rps_median": sat,
            "saturated_p99_ms_median": sat_p99,
            "reports": len(setup.reports_s),
            "report_s_median": report_s,
            "worker_cpu_s_per_round": worker_cpu,
            "report_child_cpu_s_per_round": child_cpu,
            "settle_s": setup.settle_s,
        }
    print()
    print("p50/p99/max: medians over rounds of each paced run's figure; refused (non-2xx)")
    print(f"and unsent (due more than {GRACE_S:g} s before a sender was free): all rounds;")
    print("sat/s, sat p99: the saturating run's throughput and p99 (median over rounds);")
    print("reports, report s: reports finished during the set-up's runs, their median time;")
    print("wkr cpu, child cpu: CPU seconds a round of the set-up cost the sidecar's HTTP worker")
    print("(the intake's process) and its report child (the intake itself included in wkr cpu)")
    settled = [f"{name} {max(setup.settle_s):.1f}" for name, setup in setups.items()]
    print(
        "each set-up started once no order needed routing and the WAL was emptied; longest "
        "wait for the backlog before it, s: " + ", ".join(settled)
    )
    for looped in ("report loop", "gate loop"):
        if looped not in summary:
            continue
        under = summary[looped]
        loop = under["paced_median_of_rounds"]["p99_ms"]
        lost = under["refused_total"] + under["unsent_total"]
        verdict = "met" if loop <= P99_TARGET_MS and not lost else "NOT met"
        print(
            f"target (intake p99 <= {P99_TARGET_MS:g} ms at {args.rate:g}/s under a {looped}, "
            f"nothing refused or unsent): {verdict} ({loop:.1f} ms, {lost:.0f} refused or unsent)"
        )
    for top, bottom in (
        ("gate loop", "report loop"),
        ("gate loop", "no report"),
        ("CLI report loop (nice +10)", "CLI report loop, --normal-priority"),
    ):
        if top in summary and bottom in summary:
            ratio = _ratio(summary, top, bottom)
            print(f"p99 {top} / {bottom} (same run, interleaved): {ratio:.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "orders": args.orders,
                "fill_s": fill_s,
                "report_alone_s": alone_s,
                "load_average": loads,
                **summary,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
