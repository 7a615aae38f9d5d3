"""Benchmark head-of-line blocking: good orders' latency while failing orders wait to retry.

A Runtime (dispatcher with 4 workers, local instant backend, shipped defaults) routes
orders against the legacy simulator as a real process, rollout 100 % instant. Good
orders arrive at 20/s; meanwhile ``--failing`` orders (0, 8 and 64 by default) whose
payment gateway always errs (``payment_token: error_gw``) are kept in flight: each one
retries AuthorizePayment on the shipped Retry schedule (1 s, 2 s, 4 s, full jitter),
then falls back, and is replaced by a new one. Before parking, each such retry held a
dispatcher worker for its whole wait (issue 18: good orders' p50 9.6 s with 8 of them).

Figures per case: good orders received -> terminal p50 / p99 (ms, from the ledger's
timestamps) and the ratio to the case without failing orders (target: at most 1.2), and
for the failing orders the Retry schedule as their execution histories show it: attempts
per execution (the shipped definition allows 4) and each wait against its ceiling
(IntervalSeconds x BackoffRate^n, at most MaxDelaySeconds; full jitter draws 0 to it).
Cases are interleaved round by round, their order rotated each round; the percentiles
pool each case's good orders over its rounds (``--failing 0 0 8 64`` adds an A/A case;
see the table's footer).
Good orders are sent once every failing order has parked (waits out its first Retry
interval): a burst of failing orders taken in at once would otherwise sit ahead of the
first good ones in the ledger, which is first come, first served, not head-of-line
blocking. Beside the latencies, the CPU time
per second of wall time of this process (the Runtime) and of the simulator while the good
orders run shows what the failing orders' own work costs on a machine of 2 cores.

The load generator (taking the good and failing orders in, replacing failing ones as they
end, waiting for the good ones to end) runs in the Runtime's process, as
``strangler serve --routing inline`` takes orders in beside its routing; its CPU is in
the Runtime's column. It looks only at orders still in flight, every 50 ms (at each 10 ms
tick, as until 2026-12-07, it was about 4 % of the process's GIL samples at 64 failing
orders, py-spy --gil); the intake itself (the ledger write and wake-up) is a few per cent.
Each case has a fresh ledger before the one simulator, so the follower and the reconciler
start at the case's own orders (see ``_start_cursors``), not at every order earlier cases
left there.

``--layout serve`` runs the shipped layout instead: ``strangler serve`` with shipped
defaults as a process of its own (routing in its own child, woken by the same-host wake-up
sockets) on its SQLite ledger, a fresh simulator per case (``--no-scheduler``, as above),
orders taken in over HTTP, failing ones kept in flight and replaced once the ledger shows
their fallback. ``--intake notify`` (the default) creates the orders in the simulator up
front and notifies them to ``POST /_strangler/notifications`` when due, as the inline
layout creates them up front and takes them in; ``--intake proxy`` creates each through
the sidecar's proxy (``POST /orders``) when due, so the simulator and the sidecar's HTTP
process also do the creating during the run (about 18 failing orders a second at 64). Good
orders are sent by a client
thread of their own at their steady rate, so a burst of replacements (failing orders fall
back in waves) does not bunch them up behind it. This process only sends and
reads the ledger file (read-only SQLite, one connection, each look its own snapshot),
looking for fallen-back failing orders at most every 50 ms as the in-process feed does (at
every 10 ms tick, with a connection opened per look, it used 0.05-0.11 CPU-s/s beside the
sidecar's 0.25 at 64 failing orders: load on the same 2 cores that was the bench's own);
its CPU is the ``cpu/s bench`` column, the ``cpu/s runtime`` column is the sidecar's
processes (HTTP process and routing child). The Retry schedule columns need the execution
histories, which live in the routing child: they read "-" there. Beside received ->
terminal, good orders' received -> routed is printed for both layouts.

``--twin`` adds a control case beside the largest failing count (its row reads e.g.
``64 twin``): no failing orders, but background good orders taken in at a steady rate
chosen so that the legacy app gets as many calls a second as in the failing case of the
same run (its extra calls over the case without failing orders, divided by a good
order's calls, both measured in earlier rounds: the failing case always runs before its
twin in the first round); the timed good orders are measured exactly as in the other
cases. Every row prints its legacy calls a second (the simulator's request count, read
from ``GET /_sim/faults``) and its intakes a second while the good orders ran, so the
match is visible. If the twin's p99 ratio is as high as the failing case's, what is left
is load (CPU), not head-of-line blocking; if lower, the failing path still delays others.

``--apart`` (shipped layout) adds the other control beside the largest failing count (its
row reads e.g. ``64 apart``): the same failing orders kept in flight, but taken in by a
second ``strangler serve`` of their own (its own data dir, ledger and routing child) that
shares only the legacy app and the machine with the sidecar the timed good orders go to.
That sidecar then does nothing for the failing orders (its CPU column shows it; the
footer gives the second sidecar's): whatever the failing orders still cost good orders
there is the legacy app's and the machine's, which no change to how one sidecar serves
its orders can take away. If the apart row's p99 ratio is as high as the failing case's,
the sidecar adds nothing of its own to the failing orders' cost; if lower, the difference
is the sidecar's.

``--split-cpus`` (shipped layout) splits the machine's CPUs as a deployment whose legacy
app runs on hosts of its own would: the simulator (and an apart sidecar) on the first CPU,
this process and the timed orders' sidecar on the others (each process inherits its CPUs
when started; ``STRANGLER_ROUTING_CPUS=auto`` then has one CPU and places nothing). On 2
CPUs the sidecar has one core of its own: the failing case then shows what the failing
orders cost good orders through the sidecar alone, the apart case what is left of them
through the legacy app's answers.

``--apart-nice N`` runs the apart sidecar at nice N: its failing orders' work then also
yields the CPU to everything else, as it would in a process of the failing orders' own
at a lower priority. With it, the apart row is all the failing orders could cost good
orders if the sidecar moved their resumed attempts to such a process. ``--apart-legacy``
also gives the apart sidecar a simulator process of its own on the same database, started
with the legacy app (on its CPU with ``--split-cpus``): the failing orders then share
neither the sidecar, nor a legacy process, nor (split) a core with the good ones, and
the apart row is what is left of them (its CPU column includes that simulator; its calls
are not in ``calls/s``).

``--legacy-workers N`` (shipped layout) runs the legacy app as N simulator processes on
one database with nginx in front, sending each request to the process with the fewest in
flight, as a legacy app runs on several app servers. With one process (the default) a
good order's legacy call can wait for the simulator's interpreter lock while it answers
the failing orders' calls, about 2.5 times as many a second at 64 failing orders: a wait
of the legacy app's, not of the sidecar's, that several processes make rarer. The
``cpu/s sim`` and ``calls/s`` columns add up every process (nginx included).

    .venv/bin/python bench/head_of_line.py [--good 100] [--rate 20] [--failing 0 8 64] [--rounds 2]
        [--layout inline|serve] [--intake notify|proxy] [--twin]
        [--apart [--apart-nice N] [--apart-legacy]] [--split-cpus] [--legacy-workers N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import requests
import structlog
from _flags import write_flag
from _load import have
from _nginx import nginx

from strangler.background.follower import CURSOR_KEY as FOLLOWER_CURSOR
from strangler.background.reconciler import CURSOR_KEY as RECONCILER_CURSOR
from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.instant.local_backend import LocalBackend
from strangler.logs import configure_logging
from strangler.orders import OrderNotification, OrderStatus
from strangler.routing.runtime import Runtime
from strangler.settings import Settings

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "head_of_line.json"
TICK_S = 0.01
LOOK_S = 0.05  # how often the in-process failing feed looks for ended orders
END_CAP_S = 60.0
TARGET_RATIO = 1.2
# The shipped AuthorizePayment Retry for LegacyUnavailable: ceilings of the 3 waits.
CEILINGS_S = (1.0, 2.0, 4.0)
SLACK_S = 0.25  # how late a resumed attempt may start on a loaded 2-core VM
ADMIN_TOKEN = "bench-head-of-line"  # noqa: S105 (the sidecar this bench starts)
GOOD_CARD = "tok_bench_4242"  # a payment token the simulator authorizes
FAILING_CARD = "error_gw"  # a payment token whose gateway always errs


@dataclass(frozen=True)
class Case:
    """One round of one case."""

    failing: int
    good_ms: list[float]
    attempts: list[int]
    waits: list[tuple[float, float]]  # (seconds waited, ceiling)
    cpu: tuple[float, float]  # CPU s per wall s: the Runtime's process(es), the simulator
    routed_ms: list[float] = field(default_factory=list)  # good orders' received -> routed
    orders: int = 0  # orders the timed orders' sidecar took in while its CPU was measured
    wall_s: float = 0.0  # how long the CPU was measured
    calls: int = 0  # requests the legacy app (the simulator) answered meanwhile
    switches: int = 0  # the Runtime's process(es)' threads' context switches meanwhile
    cpu_apart: float = 0.0  # CPU s per wall s of the failing orders' own sidecar (apart)
    cpu_bench: float = math.nan  # CPU s per wall s of this process (serve layout)

    def cpu_ms_per_order(self) -> float:
        """The Runtime's (sidecar's) CPU ms per order taken in while it was measured."""
        return self.cpu[0] * self.wall_s * 1000 / self.orders if self.orders else math.nan

    def switches_per_order(self) -> float:
        """The Runtime's (sidecar's) threads' context switches per order taken in."""
        return self.switches / self.orders if self.orders else math.nan

    def calls_per_s(self) -> float:
        """Legacy calls a second while the good orders ran."""
        return self.calls / self.wall_s if self.wall_s else math.nan

    def intakes_per_s(self) -> float:
        """Orders taken in a second (timed, failing and background) while they ran."""
        return self.orders / self.wall_s if self.wall_s else math.nan


@dataclass(frozen=True)
class Spec:
    """One case: how many failing orders stay in flight, or the twin or apart control of
    such a case."""

    failing: int
    twin: bool = False
    apart: bool = False


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile of ``values`` by nearest rank: the smallest value with at
    least q % of them at or below it (the p99 of 100 is the 99th, of 300 the 297th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> None:
    """Run every case for every round, print the table, write the results."""
    args = _parse_args()
    specs = _specs(args)
    args.legacy_cpus = _split_cpus(args)
    # Keyed by position, so that a count given twice (``--failing 0 0 8 64``) is a case of
    # its own: the second case without failing orders is the A/A check.
    rounds: dict[int, list[Case]] = {n: [] for n in range(len(specs))}
    with (
        tempfile.TemporaryDirectory(prefix="strangler-hol-") as tmp,
        (Path(tmp) / "head_of_line.log").open("w") as log,
    ):
        work = Path(tmp)
        # JSON logs as a deployed worker writes them, to a file rather than the terminal.
        configure_logging("json")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log))
        if args.layout == "serve":
            for round_ in range(args.rounds):
                for index in _order(len(specs), round_):
                    data = work / f"case-{index}-{round_}"
                    data.mkdir()
                    spec, twin_rate = specs[index], _twin_rate(specs, rounds, index)
                    with _simulator(data, args.legacy_cpus, args.legacy_workers) as legacy:
                        case = _serve_case(data, legacy, spec, args, twin_rate)
                    rounds[index].append(case)
        else:
            with _simulator(work) as legacy:
                for round_ in range(args.rounds):
                    for index in _order(len(specs), round_):
                        data = work / f"case-{index}-{round_}"
                        spec, twin_rate = specs[index], _twin_rate(specs, rounds, index)
                        case = _case(data, legacy, spec.failing, args, twin_rate)
                        rounds[index].append(case)
    _report(rounds, specs, args)


def _specs(args: argparse.Namespace) -> list[Spec]:
    """The cases: one per ``--failing`` count, then the controls of the largest: its
    apart case (``--apart``) and its twin (``--twin``)."""
    specs = [Spec(failing) for failing in args.failing]
    for control, wanted in (("--apart", args.apart), ("--twin", args.twin)):
        if wanted and (0 not in args.failing or max(args.failing) == 0):
            raise SystemExit(
                f"head_of_line: {control} needs a case without failing orders and one with"
            )
    if args.apart:
        if args.layout != "serve":
            raise SystemExit("head_of_line: --apart needs --layout serve (a second sidecar)")
        specs.append(Spec(max(args.failing), apart=True))
    if args.twin:
        specs.append(Spec(max(args.failing), twin=True))
    return specs


def _twin_rate(specs: list[Spec], rounds: dict[int, list[Case]], index: int) -> float | None:
    """Background good orders a second for the twin case at ``index`` (None: not a twin).

    The failing case's legacy calls a second beyond the case without failing orders,
    divided by the legacy calls per good order in that case (medians over the rounds
    measured so far; the twin comes last in the first round, so both have one).
    """
    if not specs[index].twin:
        return None
    base = rounds[specs.index(Spec(0))]
    failing = rounds[specs.index(Spec(specs[index].failing))]
    assert base, "the baseline runs before the twin"
    assert failing, "the failing case runs before its twin"
    per_good = statistics.median(case.calls / case.orders for case in base)
    extra = statistics.median(c.calls_per_s() for c in failing) - statistics.median(
        c.calls_per_s() for c in base
    )
    return max(extra, 0.0) / per_good


def _order(cases: int, round_: int) -> list[int]:
    """The cases' order in round ``round_``: rotated by one each round, so that no case
    always runs first, or always right after the same other one (in the same order every
    round, the A/A case, always second, measured 0.58-0.73x the baseline's p99 in each
    of three runs)."""
    return [(round_ + n) % cases for n in range(cases)]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--good", type=int, default=100, help="good orders per case")
    parser.add_argument("--rate", type=float, default=20.0, help="good orders per second")
    parser.add_argument("--failing", type=int, nargs="+", default=[0, 8, 64])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=4, help="dispatcher worker threads (inline layout)"
    )
    parser.add_argument(
        "--layout",
        choices=("inline", "serve"),
        default="inline",
        help="inline: a Runtime in this process; serve: `strangler serve` as shipped",
    )
    parser.add_argument(
        "--twin",
        action="store_true",
        help="add a control case beside the largest failing count: no failing orders, "
        "background good orders making as many legacy calls a second instead",
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="serve layout: add a control case beside the largest failing count: the same "
        "failing orders, taken in by a second sidecar of their own",
    )
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="serve layout: run the legacy app (and an apart sidecar) on the first CPU and "
        "everything else on the others, as if the legacy app ran on hosts of its own",
    )
    parser.add_argument(
        "--apart-nice",
        type=int,
        default=0,
        metavar="N",
        help="with --apart: run the apart sidecar at this nice value (10: the lower "
        "priority a process of the failing orders' own would have)",
    )
    parser.add_argument(
        "--apart-legacy",
        action="store_true",
        help="with --apart: the apart sidecar calls a simulator process of its own on the "
        "same database (started with the legacy app, on its CPUs)",
    )
    parser.add_argument(
        "--legacy-workers",
        type=int,
        default=1,
        metavar="N",
        help="serve layout: the legacy app as N simulator processes on one database behind "
        "nginx (least connections), as a legacy app runs on several app servers",
    )
    parser.add_argument(
        "--intake",
        choices=("notify", "proxy"),
        default="notify",
        help="serve layout: orders created in the simulator up front and notified to "
        "POST /_strangler/notifications (as the inline layout takes them in), or created "
        "during the run through the sidecar's proxy (POST /orders)",
    )
    args = parser.parse_args()
    if args.legacy_workers < 1:
        parser.error("--legacy-workers must be 1 or more")
    if args.legacy_workers > 1 and args.layout != "serve":
        parser.error("--legacy-workers needs --layout serve")
    if args.legacy_workers > 1 and not have("nginx"):
        parser.error("--legacy-workers needs nginx (apt-get install -y nginx)")
    if (args.apart_nice or args.apart_legacy) and not args.apart:
        parser.error("--apart-nice and --apart-legacy need --apart")
    return args


def _split_cpus(args: argparse.Namespace) -> set[int] | None:
    """With ``--split-cpus``: the CPU the legacy app (and an apart sidecar) will run on,
    once this process (and so every sidecar it starts) has moved off it. None without."""
    if not args.split_cpus:
        return None
    allowed = os.sched_getaffinity(0)
    if args.layout != "serve" or len(allowed) < 2:
        raise SystemExit("head_of_line: --split-cpus needs --layout serve and 2 CPUs or more")
    legacy = {min(allowed)}
    os.sched_setaffinity(0, allowed - legacy)
    return legacy


@contextmanager
def _started_on(cpus: set[int] | None) -> Iterator[None]:
    """Processes started in the block run on ``cpus`` (they inherit this thread's CPUs at
    fork); this thread gets its own back afterwards. None: as they are."""
    if cpus is None:
        yield
        return
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)


@contextmanager
def _simulator(work: Path, cpus: set[int] | None = None, workers: int = 1) -> Iterator[_Legacy]:
    """The legacy app: one simulator process, or ``workers`` of them on one database with
    nginx in front (least connections, a keep-alive pool to each), started on ``cpus``."""
    ports = [free_port() for _ in range(workers)]
    direct = tuple(f"http://127.0.0.1:{port}" for port in ports)
    with ExitStack() as stack:
        with _started_on(cpus):
            pids = [
                stack.enter_context(_simulator_process(work, port, n)).pid
                for n, port in enumerate(ports)
            ]
            if workers > 1:
                front = free_port()
                url = f"http://127.0.0.1:{front}"
                pids.append(stack.enter_context(_balancer(work, front, ports)))
            else:
                url = direct[0]
        yield _Legacy(url, tuple(pids), direct)


def _simulator_process(
    work: Path, port: int, n: int
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``strangler legacy-sim`` on ``port`` and the case's database (no batch jobs)."""
    command = [sys.executable, "-m", "strangler", "legacy-sim", "--port", str(port)]
    command += ["--db", str(work / "sim.sqlite3"), "--no-scheduler", "--log-format", "json"]
    log_path = work / (f"sim-{n}.log" if n else "sim.log")
    return running(
        command, ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_path, grace_s=15
    )


def _balancer(work: Path, front: int, ports: list[int]) -> AbstractContextManager[int]:
    """nginx on ``front`` sending each request to the simulator with the fewest in flight."""
    servers = "".join(f" server 127.0.0.1:{port};" for port in ports)
    balance = f"""
  upstream legacy {{ least_conn;{servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{front};
    location / {{
      proxy_pass http://legacy;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }}
  }}"""
    return nginx(work / "legacy-nginx", balance, ready_url=f"http://127.0.0.1:{front}/healthz")


@dataclass(frozen=True)
class _Legacy:
    """The legacy app the sidecars call: its URL, its processes (each simulator, and nginx
    in front of several) and each simulator's own URL."""

    url: str
    pids: tuple[int, ...]
    workers: tuple[str, ...]

    def cpu_s(self) -> float:
        """CPU seconds its processes (and their children: nginx's worker) have used."""
        return sum(_tree_cpu_s(pid) for pid in self.pids)

    def requests(self) -> int:
        """Requests its simulators have answered, their control paths aside."""
        return sum(_sim_requests(worker) for worker in self.workers)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sim_requests(sim_url: str) -> int:
    """Requests the simulator has answered, its own control paths aside (/_sim/faults)."""
    answer = requests.get(f"{sim_url}/_sim/faults", timeout=10)
    answer.raise_for_status()
    count: int = answer.json()["stats"]["requests"]
    return count


def _create(session: requests.Session, sim_url: str, token: str) -> tuple[OrderNotification, str]:
    """An order created in the simulator, as the order service does: its notification
    and its ``created_at``."""
    body = {
        "user_guid": f"hol-{uuid.uuid4().hex[:8]}",
        "unit_id": "unit-1",
        "city": "new-york",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token": token,
    }
    answer = session.post(f"{sim_url}/orders", json=body, timeout=10)
    answer.raise_for_status()
    created = answer.json()
    order = OrderNotification.from_dict({**body, "order_id": created["order_id"]})
    return order, created["created_at"]


def _case(
    data: Path,
    legacy: _Legacy,
    failing: int,
    args: argparse.Namespace,
    twin_rate: float | None = None,
) -> Case:
    """Good orders at ``args.rate`` while ``failing`` failing orders stay in flight (or,
    for a twin, background good orders are taken in at ``twin_rate`` a second)."""
    data.mkdir(parents=True)
    created = _create_up_front(legacy.url, failing, args, twin_rate)
    good = [order for order, _ in created[: args.good]]
    bad = [order for order, _ in created[args.good :]]
    settings = Settings(
        data_dir=data,
        flags_file=write_flag(data / "flags.json", rollout=100),
        legacy_url=legacy.url,
        workers=args.workers,
        retention_days=0,
        log_format="json",
        # Each case has a ledger of its own before the one simulator: without this, its
        # reconciler adopts the orders earlier cases created and never sent (the spares)
        # once they are 30 s old, about 100 writes a case that are not the case's load.
        reconcile_grace_s=3600,
    )
    runtime = Runtime.from_settings(settings)
    try:
        _start_cursors(runtime, first=created[0][1], last=created[-1][1])
    except BaseException:
        runtime.stop()
        raise
    with runtime:
        backend = runtime.instant
        assert isinstance(backend, LocalBackend)
        feed: _FailingFeed | _BackgroundFeed
        if twin_rate is None:
            feed = _FailingFeed(runtime, backend, bad, failing)
            feed.top_up()
            _wait(lambda: _started(runtime, feed.sent), 30, "failing orders started")
        else:
            feed = _BackgroundFeed(_intake_inline(runtime), runtime.ledger.open_orders, bad)
            feed.start(twin_rate)
            _run_for(feed, CEILINGS_S[0])  # as long as failing orders take to park
        started = time.monotonic()
        sent_at_start = len(feed.sent)
        cpu_at_start = (_cpu_s(os.getpid()), legacy.cpu_s())
        switches_at_start = _switches(os.getpid())
        calls_at_start = legacy.requests()
        for n, order in enumerate(good):
            while time.monotonic() < started + n / args.rate:
                feed.top_up()
                time.sleep(TICK_S)
            runtime.router.intake(order, source="bench")
        ids = [order.order_id for order in good]
        _wait(_all_ended(runtime, ids), END_CAP_S, "good orders to end")
        wall = time.monotonic() - started
        cpu = (
            (_cpu_s(os.getpid()) - cpu_at_start[0]) / wall,
            (legacy.cpu_s() - cpu_at_start[1]) / wall,
        )
        switches = _switches(os.getpid()) - switches_at_start
        calls = legacy.requests() - calls_at_start
        orders = len(good) + len(feed.sent) - sent_at_start
        _wait(lambda: feed.in_flight() == 0, END_CAP_S, "failing orders to end")
        stories = [runtime.ledger.story(order_id) for order_id in ids]
        good_ms = [_latency_ms(story) for story in stories]
        routed_ms = [_latency_ms(story, "routed") for story in stories]
        attempts, waits = _schedule(backend, feed.sent) if twin_rate is None else ([], [])
    return Case(failing, good_ms, attempts, waits, cpu, routed_ms, orders, wall, calls, switches)


def _create_up_front(
    sim_url: str, failing: int, args: argparse.Namespace, twin_rate: float | None
) -> list[tuple[OrderNotification, str]]:
    """The case's orders, created in the simulator: the good ones, then the failing spares
    (or a twin's background good orders)."""
    duration_s = args.good / args.rate
    with requests.Session() as session:
        created = [_create(session, sim_url, GOOD_CARD) for _ in range(args.good)]
        if twin_rate is None:
            # Each failing order lasts 3.5 s on average (half of 1 + 2 + 4 s): enough spares.
            count, card = failing * (int(duration_s / 2) + 3), FAILING_CARD
        else:
            count, card = _background_count(twin_rate, duration_s), GOOD_CARD
        created += [_create(session, sim_url, card) for _ in range(count)]
    return created


def _background_count(rate: float, duration_s: float) -> int:
    """Background orders a twin case takes in: its warm-up and the good orders' run, with
    room for their last ones ending late."""
    return math.ceil(rate * (CEILINGS_S[0] + duration_s + 5))


def _intake_inline(runtime: Runtime) -> Callable[[OrderNotification], str]:
    def take_in(order: OrderNotification) -> str:
        runtime.router.intake(order, source="bench")
        return order.order_id

    return take_in


def _run_for(feed: _BackgroundFeed, seconds: float) -> None:
    """Keep ``feed`` taking orders in for ``seconds``."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        feed.top_up()
        time.sleep(TICK_S)


class _BackgroundFeed:
    """The twin's extra load: good orders taken in at a steady rate from ``start``."""

    def __init__(
        self,
        take_in: Callable[[OrderNotification], str],
        open_orders: Callable[[list[str]], set[str]],
        orders: list[OrderNotification],
    ) -> None:
        self._take_in = take_in
        self._open_orders = open_orders
        self._orders = orders
        self._started = math.nan
        self._rate = 0.0
        self.sent: list[str] = []
        self._pending: set[str] = set()

    def start(self, rate: float) -> None:
        """Take orders in at ``rate`` a second from now on, on each ``top_up``."""
        self._started, self._rate = time.monotonic(), rate

    def top_up(self) -> None:
        """Take in every order due by now (while any are left)."""
        due = math.floor((time.monotonic() - self._started) * self._rate) + 1
        while len(self.sent) < min(due, len(self._orders)):
            order_id = self._take_in(self._orders[len(self.sent)])
            self.sent.append(order_id)
            self._pending.add(order_id)

    def stop_replacing(self) -> None:
        """Take no more orders in (those sent end on their own)."""
        self._orders = self._orders[: len(self.sent)]

    def in_flight(self) -> int:
        """How many background orders have not ended yet."""
        self._pending = self._open_orders(sorted(self._pending))
        return len(self._pending)


def _serve_case(
    data: Path,
    legacy: _Legacy,
    spec: Spec,
    args: argparse.Namespace,
    twin_rate: float | None = None,
) -> Case:
    """The shipped layout: good orders at ``args.rate`` through ``strangler serve`` while
    ``spec.failing`` failing orders stay in flight, taken in by the same sidecar or, apart,
    by a second one of their own (or, for a twin, background good orders are taken in at
    ``twin_rate`` a second)."""
    good: list[OrderNotification] = []
    spares: list[OrderNotification] = []
    if twin_rate is not None and args.intake != "notify":
        raise SystemExit("head_of_line: --twin needs --intake notify in the serve layout")
    if args.intake == "notify":
        created = [
            order for order, _ in _create_up_front(legacy.url, spec.failing, args, twin_rate)
        ]
        good, spares = created[: args.good], created[args.good :]
    with ExitStack() as stack:
        sidecar, sidecar_pid = stack.enter_context(_sidecar(data, legacy.url))
        session = stack.enter_context(requests.Session())
        ledger = _LedgerFile(data / "sidecar" / "ledger.sqlite3")
        stack.callback(ledger.close)
        feed, apart_pids = _serve_feed(
            stack,
            data,
            legacy.url,
            spec,
            twin_rate,
            _Intake(session, sidecar, spares),
            ledger,
            args,
        )
        started = time.monotonic()
        sent_at_start = len(feed.sent)
        cpu_at_start = _serve_cpu_s(sidecar_pid, legacy, apart_pids)
        switches_at_start = _tree_switches(sidecar_pid)
        calls_at_start = legacy.requests()
        # Good orders come from a client of their own, at their own pace: taking failing
        # replacements in (a burst when several fall back together) does not hold them.
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(_send_good, sidecar, good, args, started)
            while not sending.done():
                feed.top_up()
                time.sleep(TICK_S)
            ids = sending.result()
        _wait(lambda: ledger.all_terminal(ids), END_CAP_S, "good orders to end")
        wall = time.monotonic() - started
        cpu_at_end = _serve_cpu_s(sidecar_pid, legacy, apart_pids)
        sidecar_cpu, sim_cpu, apart_cpu, bench_cpu = (
            (end - start) / wall for start, end in zip(cpu_at_start, cpu_at_end, strict=True)
        )
        switches = _tree_switches(sidecar_pid) - switches_at_start
        calls = legacy.requests() - calls_at_start
        # The orders this sidecar took in while its CPU was measured.
        orders = len(ids) + (0 if spec.apart else len(feed.sent) - sent_at_start)
        feed.stop_replacing()
        _wait(lambda: feed.in_flight() == 0, END_CAP_S, "failing orders to fall back")
        routed_ms, good_ms = ledger.latencies_ms(ids)
    return Case(
        spec.failing,
        good_ms,
        [],
        [],
        (sidecar_cpu, sim_cpu),
        routed_ms,
        orders,
        wall,
        calls,
        switches,
        cpu_apart=apart_cpu,
        cpu_bench=bench_cpu,
    )


def _serve_feed(
    stack: ExitStack,
    data: Path,
    sim_url: str,
    spec: Spec,
    twin_rate: float | None,
    intake: _Intake,
    ledger: _LedgerFile,
    args: argparse.Namespace,
) -> tuple[_HttpFailingFeed | _BackgroundFeed, list[int]]:
    """The case's extra load through ``intake`` (the spares it holds), started and
    settled: its failing orders in flight and parked, through a second sidecar of their
    own when apart (its pid, and its own simulator's with ``--apart-legacy``, are returned
    too), or a twin's background good orders coming in."""
    if twin_rate is not None:
        feed = _BackgroundFeed(
            partial(_notify, intake.session, intake.sidecar), ledger.open, intake.spares()
        )
        feed.start(twin_rate)
        _run_for(feed, CEILINGS_S[0])  # as long as failing orders take to park
        return feed, []
    apart_pids: list[int] = []
    failing_ledger = ledger
    if spec.apart:
        with _started_on(args.legacy_cpus):
            if args.apart_legacy:
                port = free_port()
                own = _simulator_process(data, port, args.legacy_workers)
                apart_pids.append(stack.enter_context(own).pid)
                sim_url = f"http://127.0.0.1:{port}"
            url, apart_pid = stack.enter_context(
                _sidecar(data, sim_url, "apart", nice=args.apart_nice)
            )
            apart_pids.append(apart_pid)
        intake = _Intake(intake.session, url, intake.spares())
        failing_ledger = _LedgerFile(data / "apart" / "ledger.sqlite3")
        stack.callback(failing_ledger.close)
    failing = _HttpFailingFeed(intake, failing_ledger, spec.failing)
    failing.top_up()
    _wait(lambda: failing_ledger.routed(failing.sent), 30, "failing orders routed")
    time.sleep(CEILINGS_S[0])  # their first attempt made: each waits out a Retry
    return failing, apart_pids


def _serve_cpu_s(
    sidecar_pid: int, legacy: _Legacy, apart_pids: list[int]
) -> tuple[float, float, float, float]:
    """CPU seconds so far of the sidecar (its process tree), the legacy app, the apart
    sidecar and its own simulator if any (0 without them) and this process."""
    apart = sum(_tree_cpu_s(pid) for pid in apart_pids)
    return _tree_cpu_s(sidecar_pid), legacy.cpu_s(), apart, _cpu_s(os.getpid())


class _Intake:
    """Takes orders in through the sidecar: a notification of an order created up front
    (while any are left), else a new order through its proxy."""

    def __init__(
        self, session: requests.Session, sidecar: str, created: list[OrderNotification]
    ) -> None:
        self.session = session
        self.sidecar = sidecar
        self._created = list(reversed(created))

    def spares(self) -> list[OrderNotification]:
        """The orders created up front not taken in yet, in the order they would be."""
        return list(reversed(self._created))

    def failing(self) -> str | None:
        """Take a failing order in; its order_id (None: none created up front is left)."""
        if self._created:
            return _notify(self.session, self.sidecar, self._created.pop())
        return None


def _notify(session: requests.Session, sidecar: str, order: OrderNotification) -> str:
    answer = session.post(
        f"{sidecar}/_strangler/notifications",
        json=order.to_dict(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    return order.order_id


@contextmanager
def _sidecar(
    data: Path, sim_url: str, name: str = "sidecar", *, nice: int = 0
) -> Iterator[tuple[str, int]]:
    """``strangler serve`` with shipped defaults but for its port, data dir and flag, at
    ``nice`` (its processes inherit it)."""
    port = free_port()
    home = data / name
    home.mkdir()
    env = {
        "STRANGLER_DATA_DIR": str(home),
        "STRANGLER_FLAGS_FILE": str(write_flag(home / "flags.json", rollout=100)),
        "STRANGLER_UPSTREAM_URL": sim_url,
        "STRANGLER_LEGACY_URL": sim_url,
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_LOG_FORMAT": "json",
        "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
        # Orders created up front and notified later are not the reconciler's to adopt.
        "STRANGLER_RECONCILE_GRACE_S": "3600",
    }
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "strangler", "serve"]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    with running(
        command,
        ready_url=f"{base}/_strangler/readyz",
        log_path=home / "sidecar.log",
        env=env,
        timeout_s=90,
        grace_s=30,
    ) as process:
        yield base, process.pid


def _send_good(
    sidecar: str, created: list[OrderNotification], args: argparse.Namespace, started: float
) -> list[str]:
    """Good orders through the sidecar, one every 1/rate s from ``started``: notified when
    ``created`` up front, else created through its proxy."""
    ids = []
    with requests.Session() as session:
        for n in range(args.good):
            pause = started + n / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if created:
                ids.append(_notify(session, sidecar, created[n]))
            else:
                ids.append(_post_order(session, sidecar, GOOD_CARD))
    return ids


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds used by process ``pid`` and its live descendants (Linux /proc)."""
    return sum(_cpu_s(current) for current in _tree(pid))


def _tree_switches(pid: int) -> int:
    """Context switches of the live threads of process ``pid`` and its descendants."""
    return sum(_switches(current) for current in _tree(pid))


def _tree(pid: int) -> list[int]:
    """Process ``pid`` and its live descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _switches(pid: int) -> int:
    """Context switches (voluntary and not) of process ``pid``'s live threads (Linux
    /proc; 0 elsewhere): each thread woken to run and put to sleep again counts."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        total += sum(int(line.split()[1]) for line in lines if "ctxt_switches" in line)
    return total


def _post_order(session: requests.Session, sidecar: str, token: str) -> str:
    """Create an order through the sidecar's proxy, as a client does; its order_id."""
    body = {
        "user_guid": f"hol-{uuid.uuid4().hex[:8]}",
        "unit_id": "unit-1",
        "city": "new-york",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token": token,
    }
    answer = session.post(f"{sidecar}/orders", json=body, timeout=10)
    answer.raise_for_status()
    order_id: str = answer.json()["order_id"]
    return order_id


class _LedgerFile:
    """The sidecar's SQLite ledger, read-only from this process (WAL: never blocks writes),
    through one connection opened at the first look (each query its own snapshot)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _rows(self, query: str, order_ids: list[str]) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, timeout=10, isolation_level=None
            )
        marks = ",".join("?" * len(order_ids))
        return self._conn.execute(query.format(marks=marks), order_ids).fetchall()

    def close(self) -> None:
        """Close the connection, if one was opened."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def routed(self, order_ids: list[str]) -> bool:
        """Every one of ``order_ids`` routed."""
        query = "SELECT count(*) FROM orders WHERE order_id IN ({marks}) AND routed_at IS NOT NULL"
        return bool(self._rows(query, order_ids)[0][0] == len(order_ids))

    def all_terminal(self, order_ids: list[str]) -> bool:
        """Every one of ``order_ids`` terminal."""
        query = (
            "SELECT count(*) FROM orders WHERE order_id IN ({marks}) AND terminal_at IS NOT NULL"
        )
        return bool(self._rows(query, order_ids)[0][0] == len(order_ids))

    def open(self, order_ids: list[str]) -> set[str]:
        """Which of ``order_ids`` are not terminal yet (or not taken in yet)."""
        if not order_ids:
            return set()
        query = (
            "SELECT order_id FROM orders WHERE order_id IN ({marks}) AND terminal_at IS NOT NULL"
        )
        return set(order_ids) - {row[0] for row in self._rows(query, order_ids)}

    def ended(self, order_ids: list[str]) -> set[str]:
        """Which of ``order_ids`` fell back or ended."""
        query = (
            "SELECT order_id FROM orders WHERE order_id IN ({marks}) "
            "AND (fell_back_at IS NOT NULL OR terminal_at IS NOT NULL)"
        )
        return {row[0] for row in self._rows(query, order_ids)}

    def latencies_ms(self, order_ids: list[str]) -> tuple[list[float], list[float]]:
        """Received -> routed and received -> terminal of each of ``order_ids``, in ms."""
        query = "SELECT received_at, routed_at, terminal_at FROM orders WHERE order_id IN ({marks})"
        routed, terminal = [], []
        for received, routed_at, terminal_at in self._rows(query, order_ids):
            start = _stamp(received)
            routed.append((_stamp(routed_at) - start).total_seconds() * 1000)
            terminal.append((_stamp(terminal_at) - start).total_seconds() * 1000)
        return routed, terminal


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


class _HttpFailingFeed:
    """Keeps ``n`` failing orders in flight through the sidecar, replacing each that falls
    back (as the ledger shows it)."""

    def __init__(self, intake: _Intake, ledger: _LedgerFile, n: int) -> None:
        self._intake = intake
        self._ledger = ledger
        self._n = n
        self.sent: list[str] = []
        self._pending: set[str] = set()
        self._looked_at = -math.inf

    def in_flight(self) -> int:
        """How many sent failing orders had not fallen back at the last look (the ledger
        is looked at most every ``LOOK_S``, as the in-process feed does)."""
        if self._pending and time.monotonic() - self._looked_at >= LOOK_S:
            self._looked_at = time.monotonic()
            self._pending -= self._ledger.ended(sorted(self._pending))
        return len(self._pending)

    def stop_replacing(self) -> None:
        """Let the orders in flight end without replacing them."""
        self._n = 0

    def top_up(self) -> None:
        """Take in failing orders until ``n`` are in flight."""
        for _ in range(self._n - self.in_flight()):
            order_id = self._intake.failing()
            if order_id is None:
                order_id = _post_order(self._intake.session, self._intake.sidecar, FAILING_CARD)
            self.sent.append(order_id)
            self._pending.add(order_id)


def _start_cursors(runtime: Runtime, *, first: str, last: str) -> None:
    """Start the follower and the reconciler where this case's orders begin.

    Each case has a fresh ledger before the one simulator: without this, a case's follower
    reads every order earlier cases left in it (thousands by the last case), parsing them
    in this process and listing them in the simulator's. The follower starts at this
    case's first order (it sees this case's orders created up front once, as it would see
    each created in production). The reconciler starts after the last: with the grace of
    an hour it would otherwise re-read, every sweep, a page of 500 orders from the oldest
    spare failing order not sent yet (held back as "intake may still come"), which in
    production would not exist yet.
    """
    runtime.ledger.set_value(FOLLOWER_CURSOR, first)
    runtime.ledger.set_value(RECONCILER_CURSOR, last)


class _FailingFeed:
    """Keeps ``n`` failing orders in flight (while spares last), replacing each that ends.

    The harness runs in the Runtime's process and shares its GIL (and its CPU figure): so
    only the orders still in flight are looked at (not every order sent so far), and at
    most every ``LOOK_S`` (at every 10 ms tick, looking up 64 executions was about 4 % of
    the process's GIL samples at 64 failing orders, a cost of the bench that the twin's
    feed did not have). An ended order is replaced within ``LOOK_S``.
    """

    def __init__(
        self, runtime: Runtime, backend: LocalBackend, spares: list[OrderNotification], n: int
    ) -> None:
        self._runtime = runtime
        self._backend = backend
        self._spares = spares
        self._n = n
        self.sent: list[str] = []
        self._pending: list[str] = []
        self._looked_at = -math.inf

    def in_flight(self) -> int:
        """How many sent failing orders had no finished execution at the last look."""
        if time.monotonic() - self._looked_at >= LOOK_S:
            self._looked_at = time.monotonic()
            self._pending = [oid for oid in self._pending if self._backend.get(oid) is None]
        return len(self._pending)

    def top_up(self) -> None:
        """Take in failing orders until ``n`` are in flight (while spares last)."""
        for _ in range(self._n - self.in_flight()):
            if len(self.sent) == len(self._spares):
                return
            order = self._spares[len(self.sent)]
            self.sent.append(order.order_id)
            self._pending.append(order.order_id)
            self._runtime.router.intake(order, source="bench")


def _started(runtime: Runtime, sent: list[str]) -> bool:
    """Every failing order routed, and each one parked or ended (none queued or running)."""
    dispatcher = runtime.dispatcher
    if dispatcher.in_flight != dispatcher.parked:
        return False
    stories = [runtime.ledger.story(order_id) for order_id in sent]
    return all(story and story["status"] != OrderStatus.RECEIVED for story in stories)


def _all_ended(runtime: Runtime, order_ids: list[str]) -> Callable[[], bool]:
    """A check that every one of ``order_ids`` has ended, asking only about those open at
    the last look (this runs in the Runtime's process, every tick)."""
    still_open = set(order_ids)

    def ended() -> bool:
        still_open.intersection_update(runtime.ledger.open_orders(sorted(still_open)))
        return not still_open

    return ended


def _wait(condition: Any, cap_s: float, what: str) -> None:
    deadline = time.monotonic() + cap_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"head_of_line: timed out after {cap_s}s waiting for {what}")
        time.sleep(TICK_S)


def _latency_ms(story: dict[str, Any] | None, until: str = "terminal") -> float:
    assert story is not None
    stamps = story["timestamps"]
    received = datetime.fromisoformat(stamps["received"])
    return (datetime.fromisoformat(stamps[until]) - received).total_seconds() * 1000


def _schedule(
    backend: LocalBackend, order_ids: list[str]
) -> tuple[list[int], list[tuple[float, float]]]:
    """AuthorizePayment attempts per execution, and each wait with its ceiling."""
    attempts, waits = [], []
    for order_id in order_ids:
        result = backend.get(order_id)
        assert result is not None
        assert result.history is not None
        failed_at = None
        tries = 0
        in_payment = False
        for event in result.history:
            if event["type"] == "TaskStateEntered":
                in_payment = event["stateEnteredEventDetails"]["name"] == "AuthorizePayment"
            if not in_payment:
                continue
            if event["type"] == "LambdaFunctionScheduled":
                if failed_at is not None:
                    waited = (event["timestamp"] - failed_at).total_seconds()
                    waits.append((waited, CEILINGS_S[tries - 1]))
                tries += 1
            elif event["type"] == "LambdaFunctionFailed":
                failed_at = event["timestamp"]
        attempts.append(tries)
    return attempts, waits


def _split_words(legacy_cpus: set[int] | None) -> str:
    if legacy_cpus is None:
        return ""
    rest = sorted(os.sched_getaffinity(0))
    return (
        f", CPUs split: the legacy app (and an apart sidecar) on {min(legacy_cpus)}, "
        f"this process and the timed orders' sidecar on {','.join(map(str, rest))}"
    )


def _legacy_words(workers: int) -> str:
    if workers == 1:
        return "simulator"
    return f"legacy app of {workers} simulator processes on one database behind nginx"


def _report(rounds: dict[int, list[Case]], specs: list[Spec], args: argparse.Namespace) -> None:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"head-of-line benchmark ({os.cpu_count()} CPUs): {args.good} good orders at "
        f"{args.rate:g}/s per case, {args.workers} dispatcher workers, "
        f"{_legacy_words(args.legacy_workers)} at zero added latency, SQLite ledger, "
        f"{args.rounds} rounds interleaved, layout "
        f"{args.layout}{' (intake ' + args.intake + ')' if args.layout == 'serve' else ''}"
        f"{_split_words(args.legacy_cpus)}; load average {load}"
    )
    print(
        f"{'failing in flight':>18}{'good p50 ms':>13}{'good p99 ms':>13}"
        f"{'p50 ratio':>11}{'p99 ratio':>11}{'p99 ratio 90%':>15}{'p99/round ms':>14}"
        f"{'good max ms':>13}{'attempts':>10}{'waits <= ceiling':>18}"
        f"{'cpu/s runtime':>15}{'cpu/s sim':>11}{'cpu/s bench':>13}"
        f"{'routed p50 ms':>15}{'routed p99 ms':>15}"
        f"{'cpu ms/order':>14}{'calls/s':>9}{'intakes/s':>11}{'switches/order':>16}"
    )
    # The baseline is the first case without failing orders; a later one is the A/A check.
    first = specs.index(Spec(0)) if Spec(0) in specs else 0
    base = _pooled(rounds[first])
    base50, base99 = _pct(base, 50), _pct(base, 99)
    rng = random.Random(18)
    summary = {}
    for index, cases in rounds.items():
        failing = specs[index].failing
        label = f"{failing} (A/A)" if failing == 0 and index != first else str(failing)
        label = f"{failing} twin" if specs[index].twin else label
        label = f"{failing} apart" if specs[index].apart else label
        good = _pooled(cases)
        p50, p99 = _pct(good, 50), _pct(good, 99)
        low, high = _ratio_interval(good, base, rng)
        per_round = [_pct(case.good_ms, 99) for case in cases]
        spread = f"{min(per_round):.0f}-{max(per_round):.0f}"
        attempts = sorted({n for case in cases for n in case.attempts})
        waits = [w for case in cases for w in case.waits]
        within = sum(1 for waited, ceiling in waits if 0 <= waited <= ceiling + SLACK_S)
        tries = ",".join(map(str, attempts)) or "-"
        kept = f"{within}/{len(waits)}" if waits else "-"
        cpu_runtime = statistics.median(case.cpu[0] for case in cases)
        cpu_sim = statistics.median(case.cpu[1] for case in cases)
        cpu_bench = statistics.median(case.cpu_bench for case in cases)
        per_order = statistics.median(case.cpu_ms_per_order() for case in cases)
        calls_per_s = statistics.median(case.calls_per_s() for case in cases)
        intakes_per_s = statistics.median(case.intakes_per_s() for case in cases)
        switches = statistics.median(case.switches_per_order() for case in cases)
        routed = [ms for case in cases for ms in case.routed_ms]
        r50 = _pct(routed, 50) if routed else None
        r99 = _pct(routed, 99) if routed else None
        print(
            f"{label:>18}{p50:>13.1f}{p99:>13.1f}{p50 / base50:>11.2f}{p99 / base99:>11.2f}"
            f"{f'{low:.2f}-{high:.2f}':>15}{spread:>14}{max(good):>13.1f}"
            f"{tries:>10}{kept:>18}{cpu_runtime:>15.2f}{cpu_sim:>11.2f}"
            f"{'-' if math.isnan(cpu_bench) else f'{cpu_bench:.2f}':>13}"
            f"{_ms(r50):>15}{_ms(r99):>15}{per_order:>14.2f}"
            f"{calls_per_s:>9.1f}{intakes_per_s:>11.1f}{switches:>16.1f}"
        )
        summary[label] = {
            "good_orders": len(good),
            "good_p50_ms": p50,
            "good_p99_ms": p99,
            "good_max_ms": max(good),
            "p50_ratio": p50 / base50,
            "p99_ratio": p99 / base99,
            "p99_ratio_interval": [low, high],
            "p99_per_round_ms": per_round,
            "attempts": attempts,
            "waits_within_ceiling": within,
            "waits": len(waits),
            "cpu_per_s_runtime": cpu_runtime,
            "cpu_per_s_sim": cpu_sim,
            "cpu_per_s_bench": None if math.isnan(cpu_bench) else cpu_bench,
            "cpu_ms_per_order": per_order,
            "legacy_calls_per_s": calls_per_s,
            "intakes_per_s": intakes_per_s,
            "switches_per_order": switches,
            "cpu_per_s_apart": statistics.median(case.cpu_apart for case in cases),
            "good_routed_p50_ms": r50,
            "good_routed_p99_ms": r99,
            "good_ms_per_round": [case.good_ms for case in cases],
            "routed_ms_per_round": [case.routed_ms for case in cases],
        }
    print(
        f"target: good orders' p50 and p99 at most {TARGET_RATIO:g}x the case without "
        "failing orders; every failing execution 4 attempts, every wait within its ceiling "
        f"(+{SLACK_S:g} s for a late timer)"
    )
    print(
        "percentiles over every round's good orders pooled (nearest rank); p99 ratio 90%: "
        "its bootstrap interval (resampling both cases' good orders), the statistic's own "
        "sampling noise; p99/round: the spread of each round's p99; a second case without "
        "failing orders (--failing 0 0 8 64) is the A/A check, the noise between runs"
    )
    print(
        "calls/s, intakes/s: legacy calls (requests the simulator answered) and orders taken "
        "in a second while the good orders ran, medians over rounds; switches/order: the "
        "context switches of the Runtime's (sidecar's) threads then, over those orders (a "
        "thread woken for work and put to sleep again counts; threads that ended do not); "
        "cpu/s bench: this process's (serve layout: sending orders, looking at the ledger)"
        + "".join(_control_notes(specs, rounds, args.apart_nice))
    )
    if Spec(specs[-1].failing, apart=True) in specs:
        summary["sidecar_share"] = _sidecar_share(specs, rounds, rng)
    summary["setup"] = {
        "layout": args.layout,
        "legacy_workers": args.legacy_workers,
        "apart_nice": args.apart_nice,
        "apart_legacy": args.apart_legacy,
        "split_cpus": args.split_cpus,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    results = RESULTS if args.layout == "inline" else RESULTS.with_name("head_of_line_serve.json")
    results.write_text(json.dumps(summary, indent=2))


def _sidecar_share(
    specs: list[Spec], rounds: dict[int, list[Case]], rng: random.Random
) -> dict[str, Any]:
    """Print and return the failing case against its apart control: what the failing
    orders cost good orders through the sidecar they share, beyond what they cost them
    through the legacy app and the machine."""
    failing = specs[-1].failing
    shared = _pooled(rounds[specs.index(Spec(failing))])
    apart = _pooled(rounds[specs.index(Spec(failing, apart=True))])
    p50, p99 = _pct(shared, 50) / _pct(apart, 50), _pct(shared, 99) / _pct(apart, 99)
    low, high = _ratio_interval(shared, apart, rng)
    print(
        f"the sidecar's own share: {failing} failing (one sidecar) against {failing} apart "
        f"(a sidecar of their own): p50 {p50:.2f}x, p99 {p99:.2f}x (90%: {low:.2f}-{high:.2f})"
    )
    return {"failing": failing, "p50_ratio": p50, "p99_ratio": p99, "p99_interval": [low, high]}


def _control_notes(
    specs: list[Spec], rounds: dict[int, list[Case]], apart_nice: int
) -> Iterator[str]:
    """The footer's words on the control cases (``--apart``, ``--twin``)."""
    for index, spec in enumerate(specs):
        if spec.apart:
            apart_cpu = statistics.median(case.cpu_apart for case in rounds[index])
            yield (
                f"; {spec.failing} apart: the failing orders taken in by a second sidecar of "
                f"their own{f' at nice {apart_nice}' if apart_nice else ''} "
                f"({apart_cpu:.2f} CPU-s/s), sharing only the legacy app and the "
                "machine; the CPU and intake columns are the timed orders' sidecar's"
            )
        if spec.twin:
            yield (
                f"; {spec.failing} twin: no failing orders, background good orders at "
                f"{_twin_rate(specs, rounds, index):.1f}/s (last round) instead, as many "
                f"legacy calls a second as the {spec.failing}-failing case"
            )


def _pooled(cases: list[Case]) -> list[float]:
    """Every round's good orders' received -> terminal, in ms."""
    return [ms for case in cases for ms in case.good_ms]


def _ratio_interval(
    sample: list[float], base: list[float], rng: random.Random, draws: int = 2000
) -> tuple[float, float]:
    """The 5th and 95th percentiles of p99(sample) / p99(base) over bootstrap resamples."""
    ratios = sorted(
        _pct(rng.choices(sample, k=len(sample)), 99) / _pct(rng.choices(base, k=len(base)), 99)
        for _ in range(draws)
    )
    return _pct(ratios, 5), _pct(ratios, 95)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    exit_on_sigterm()
    main()
