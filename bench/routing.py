"""Benchmark routing: orders routed per second, and CPU per order, by one Runtime.

Orders are put in a fresh SQLite ledger first (intake is bench/intake.py's business);
then a Runtime (dispatcher, 4 workers by default, as ``strangler worker`` runs it)
starts, and the clock runs until no order waits for dispatch. Four cases, one after
the other in one run, each for a few rounds (median and min-max shown):

- ``legacy``: the flag sends every order down the legacy path (decision pinned, order
  handed to the batch jobs), against the legacy simulator as a real process;
- ``instant-sim``: the flag sends every order down the instant path (local backend:
  claim, fraud scan, authorize, fulfil) against the simulator;
- ``instant-fake``: the instant path against a zero-latency legacy fake in this
  process, so the figure is the strangler's own cost. ``--profile`` records it with
  py-spy (bench/results/routing-profile.txt, top functions by own time);
- ``instant-fake-procs``: the same with ``--processes`` routing processes (2 by
  default, one per core) sharing the one ledger, as several ``strangler worker``
  processes would; leases keep each order with one of them;
- ``instant-fake-warm``: instant-fake in steady state: the Runtime first routes
  ``--warm`` orders (10,000 by default: the ledger holds them, and whatever a process
  keeps of its executions has had time to grow), untimed; then the round's orders are
  taken in and timed, so costs that grow with what a process has done show;
- ``instant-fake-arrivals`` (only when named in ``--cases``): instant-fake with the
  orders taken in one by one through ``Router.intake`` (which wakes the dispatcher), one
  every 3 ms, as the sidecar takes them, the intake's CPU included; printed with the
  claims per order (one per order at best: each arrival's wake-up claims it).

CPU per order is the routing processes' CPU time (all threads) over the orders: the
simulator's CPU is not in it. Below the table, the CPU of the one-process cases is
split by thread (Linux): the dispatcher's workers, its feeder (claims and lease
renewals), and the rest (the bench's own polling, the follower, timers); with the cyclic
garbage collector's share of it, and the process's thread switches per order (voluntary
and not). Target (issue
18): one routing process (instant-fake, and instant-fake-warm in steady state) at least
1,500 orders/s, at most 0.6 ms of CPU per order; CPU per order is the figure to compare
on a shared machine. Beside it, each order's latency from routed to terminal (p50 and
p99 over every round's timed orders): its own processing, as the workers share the CPU,
without the wait in the queue.
Results also go to bench/results/routing.json.

``--parts`` instead prints where one order's CPU goes, single-threaded (no dispatcher
threads: claim and ``Router.process`` in a loop on one thread, the instant path against
the zero-latency fake): the claim, ``pin_decision``, the local ASL executor,
``steps_from_history``, ``finish``, the log lines written and the rest (router, backend,
leases).

    .venv/bin/python bench/routing.py [--orders 1000] [--rounds 3] [--processes 2] [--profile]
    .venv/bin/python bench/routing.py --parts [--orders 3000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import requests
import structlog
from _flags import write_flag
from structlog._base import BoundLoggerBase

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.instant import local_backend
from strangler.instant.local_backend import LocalBackend
from strangler.ledger import SqlLedger, ledger_from_url, statements
from strangler.ledger.redact import stored_notification
from strangler.legacy_adapter import StepOutcome
from strangler.legacy_adapter.exceptions import OrderNotFound
from strangler.legacy_adapter.models import LegacyOrder, ListedOrder
from strangler.logs import configure_logging
from strangler.orders import OrderNotification
from strangler.routing.affinity import keep_routing_cpu, set_threads_affinity
from strangler.routing.router import Lease
from strangler.routing.runtime import Runtime
from strangler.settings import Settings

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "routing.json"
PROFILE = BENCH / "results" / "routing-profile.txt"
TIME_CAP_S = 120.0
TARGET_PER_S = 1500.0
TARGET_CPU_MS = 0.6
CASES = ("legacy", "instant-sim", "instant-fake", "instant-fake-procs", "instant-fake-warm")
ARRIVALS = "instant-fake-arrivals"  # run only when named: its rounds take orders x 3 ms
ARRIVAL_GAP_S = 0.003
WARM_ORDERS = 10_000
POLL_S = 0.005
# py-spy's default 100 samples/s gave about a hundred samples of a round, too few to rank;
# faster sampling must not pause the process (--nonblocking), or it slows routing 50-fold.
PROFILE_RATE_HZ = 500
PROFILE_ORDERS_FACTOR = 3
_DECISIONS = {"fraud_scan": "pass", "authorize_payment": "authorized", "fulfill": "fulfilled"}


class ZeroLatencyLegacy:
    """The legacy seam answered in memory at once: every claim taken, every step passed."""

    def claim(self, order_id: str) -> bool:  # noqa: ARG002  (the seam's signature)
        """Always taken."""
        return True

    def release(self, order_id: str, reason: str) -> None:
        """Nothing to hand back."""

    def get_order(self, order_id: str) -> LegacyOrder:
        """The fake keeps no orders."""
        raise OrderNotFound(order_id)

    def orders_listed_since(
        self,
        since: datetime | None,  # noqa: ARG002  (the seam's signature)
        *,
        limit: int = 500,  # noqa: ARG002
    ) -> Sequence[ListedOrder]:
        """Nothing moves on the legacy side."""
        return []

    def _step(self, step: str, order_id: str, dry_run: bool) -> StepOutcome:
        decision = _DECISIONS[step]
        return StepOutcome(
            step=step,
            decision=decision,
            order_status="pending" if dry_run else decision,
            dry_run=dry_run,
            details={},
            order_id=order_id,
        )

    def fraud_scan(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Passed."""
        return self._step("fraud_scan", order_id, dry_run)

    def authorize_payment(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Authorized."""
        return self._step("authorize_payment", order_id, dry_run)

    def fulfill(self, order_id: str, *, dry_run: bool = False) -> StepOutcome:
        """Fulfilled."""
        return self._step("fulfill", order_id, dry_run)


@dataclass(frozen=True)
class Run:
    """One round of one case."""

    orders: int
    seconds: float
    cpu_s: float
    latencies_ms: tuple[float, ...] = ()
    by_thread: dict[str, float] | None = None  # CPU seconds by kind of thread
    claims: int | None = None  # the dispatcher's claims (instant-fake-arrivals)
    switches: int | None = None  # thread switches, all threads (Linux)
    gc_s: float | None = None  # CPU seconds in the cyclic garbage collector

    @property
    def per_s(self) -> float:
        """Orders routed per second."""
        return self.orders / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_order(self) -> float:
        """This process's CPU per order, in ms."""
        return self.cpu_s * 1000 / self.orders if self.orders else 0.0


def main() -> None:
    """Run every case for every round, print the table, write the results."""
    args = _parse_args()
    gc.callbacks.append(_time_gc)
    if args.child:
        _child(Path(args.child), args.workers, args.routing_cpus, args.child_index)
        return
    if args.parts:
        _parts(args.orders)
        return
    runs: dict[str, list[Run]] = {case: [] for case in args.cases}
    with (
        tempfile.TemporaryDirectory(prefix="strangler-routing-") as tmp,
        (Path(tmp) / "routing.log").open("w") as log,
    ):
        work = Path(tmp)
        _log_to(log)
        sim = _simulator(work) if {"legacy", "instant-sim"} & set(args.cases) else None
        with sim or _nothing() as sim_url:
            for round_ in range(args.rounds):
                for case in args.cases:
                    # instant-fake-procs' children pin themselves, as serve's would.
                    cpus = "off" if case == "instant-fake-procs" else args.routing_cpus
                    with _pinned(cpus, 0):
                        runs[case].append(_round(work / f"{case}-{round_}", case, sim_url, args))
        if args.profile and "instant-fake" in args.cases:
            _profile(work / "profile", args.orders)
    _report(runs, args)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="dispatcher worker threads")
    parser.add_argument(
        "--processes", type=int, default=2, help="routing processes of instant-fake-procs"
    )
    parser.add_argument("--cases", nargs="+", choices=(*CASES, ARRIVALS), default=list(CASES))
    parser.add_argument("--profile", action="store_true", help="py-spy the instant-fake case")
    parser.add_argument(
        "--warm", type=int, default=WARM_ORDERS, help="orders routed before instant-fake-warm"
    )
    parser.add_argument(
        "--parts", action="store_true", help="CPU per order of each part, single-threaded"
    )
    parser.add_argument(
        "--routing-cpus",
        default=os.environ.get("STRANGLER_ROUTING_CPUS", "auto"),
        help="the routing process's CPU affinity, as STRANGLER_ROUTING_CPUS (default: auto, "
        "as serve's routing child: one CPU)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a routing process's data dir
    parser.add_argument("--child-index", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


def _log_to(log: IO[str]) -> None:
    # JSON logs as a deployed worker writes them, to a file rather than the terminal.
    configure_logging("json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log))


@contextmanager
def _pinned(setting: str, index: int) -> Iterator[None]:
    """This process's threads placed as serve's routing child ``index`` would place its
    own, and back where they were afterwards (the bench's other cases are not placed)."""
    Settings(routing_cpus=setting)  # its form checked, as serve checks it
    allowed = os.sched_getaffinity(0)
    keeper = keep_routing_cpu(setting, index)
    try:
        yield
    finally:
        if keeper is not None:
            keeper.stop()
        set_threads_affinity(allowed)


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


@contextmanager
def _simulator(work: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "strangler",
        "legacy-sim",
        "--port",
        str(port),
        "--db",
        str(work / "sim.sqlite3"),
        "--no-scheduler",
        "--log-format",
        "json",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(command, ready_url=f"{base}/healthz", log_path=work / "sim.log", grace_s=15):
        yield base


def _flags(data: Path, case: str) -> Path:
    path = data / "flags.json"
    if not path.exists():  # written once per round, before any routing process reads it
        write_flag(path, rollout=0 if case == "legacy" else 100)
    return path


def _orders(case: str, sim_url: str, count: int) -> list[OrderNotification]:
    if case.startswith("instant-fake"):
        return [_notification(f"rt-{uuid.uuid4().hex}") for _ in range(count)]
    made = []
    with requests.Session() as session:
        for _ in range(count):
            answer = session.post(f"{sim_url}/orders", json=_body(), timeout=10)
            answer.raise_for_status()
            made.append(_notification(answer.json()["order_id"]))
    return made


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


def _notification(order_id: str) -> OrderNotification:
    return OrderNotification.from_dict(
        {"order_id": order_id, "user_guid": f"u-{order_id[-6:]}", "unit_id": "unit-1"}
    )


def _runtime(data: Path, case: str, sim_url: str, workers: int) -> Runtime:
    settings = Settings(
        data_dir=data,
        flags_file=_flags(data, case),
        legacy_url=sim_url or "http://127.0.0.1:9",
        workers=workers,
        retention_days=0,
        log_format="json",
    )
    legacy = ZeroLatencyLegacy() if case.startswith("instant-fake") else None
    return Runtime.from_settings(settings, legacy=legacy)


def _round(data: Path, case: str, sim_url: str, args: argparse.Namespace) -> Run:
    data.mkdir(parents=True)
    orders = _orders(case, sim_url, args.orders)
    if case == "instant-fake-warm":
        return _round_warm(data, orders, args.warm, args.workers)
    if case == ARRIVALS:
        return _round_arrivals(data, orders, args.workers)
    ledger = ledger_from_url(f"sqlite:///{data / 'ledger.sqlite3'}")
    for order in orders:
        ledger.record_received(order, source="bench")
    ledger.close()
    _flags(data, case)
    if case == "instant-fake-procs":
        return _round_in_processes(
            data, args.orders, args.processes, args.workers, args.routing_cpus
        )
    runtime = _runtime(data, case, sim_url, args.workers)
    mark = _Mark.now()
    cpu, start = time.process_time(), time.perf_counter()
    runtime.start()
    _wait_dispatched(data, start + TIME_CAP_S)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    split = mark.since()
    runtime.stop(10)
    return Run(args.orders - _left(data), seconds, cpu_s, _latencies(data), **split)


def _round_warm(data: Path, orders: list[OrderNotification], warm: int, workers: int) -> Run:
    """Route ``warm`` orders untimed, then the round's ``orders``, timed.

    The round's orders appear at once (one transaction, about 0.03 ms of CPU per order,
    counted), as they do in the other cases, where they are written before the start.
    """
    ledger = ledger_from_url(f"sqlite:///{data / 'ledger.sqlite3'}")
    _insert_at_once(ledger, [_notification(f"wm-{uuid.uuid4().hex}") for _ in range(warm)])
    _flags(data, "instant-fake-warm")
    runtime = _runtime(data, "instant-fake-warm", "", workers)
    runtime.start()
    _wait_dispatched(data, time.perf_counter() + TIME_CAP_S * 4)
    mark = _Mark.now()
    cpu, start = time.process_time(), time.perf_counter()
    _insert_at_once(ledger, orders)
    runtime.dispatcher.wake()
    _wait_dispatched(data, start + TIME_CAP_S)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    split = mark.since()
    runtime.stop(10)
    ledger.close()
    return Run(len(orders) - _left(data), seconds, cpu_s, _latencies(data), **split)


def _round_arrivals(data: Path, orders: list[OrderNotification], workers: int) -> Run:
    """Take ``orders`` in one by one, ``ARRIVAL_GAP_S`` apart, through the router's intake
    (it wakes the dispatcher); timed from the first intake until none waits."""
    _flags(data, ARRIVALS)
    runtime = _runtime(data, ARRIVALS, "", workers)
    ledger = runtime.ledger
    claims = [0]
    claim_due = ledger.claim_due

    def counted(owner: str, **rest: Any) -> list[Any]:
        claims[0] += 1
        return claim_due(owner, **rest)

    ledger.claim_due = counted  # type: ignore[method-assign]
    runtime.start()
    _wait_dispatched(data, time.perf_counter() + TIME_CAP_S)
    mark = _Mark.now()
    cpu, start = time.process_time(), time.perf_counter()
    claims[0] = 0
    for order in orders:
        runtime.router.intake(order, source="bench")
        time.sleep(ARRIVAL_GAP_S)
    _wait_dispatched(data, start + TIME_CAP_S)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    split = mark.since()
    counted_claims = claims[0]
    runtime.stop(10)
    return Run(
        len(orders) - _left(data), seconds, cpu_s, _latencies(data), claims=counted_claims, **split
    )


_GC_CPU_S = [0.0]  # CPU seconds spent in the cyclic garbage collector so far
_gc_started: dict[int, float] = {}


def _time_gc(phase: str, _info: dict[str, Any]) -> None:
    """A gc.callbacks hook: the collecting thread's CPU from a collection's start to stop."""
    thread = threading.get_ident()
    if phase == "start":
        _gc_started[thread] = time.thread_time()
    elif thread in _gc_started:
        _GC_CPU_S[0] += time.thread_time() - _gc_started.pop(thread)


@dataclass(frozen=True)
class _Mark:
    """What a round is measured from: each thread's CPU, thread switches, the GC's CPU."""

    threads: dict[int, float]
    switches: int | None
    gc_s: float

    @classmethod
    def now(cls) -> _Mark:
        return cls(_thread_cpu(), _switches(), _GC_CPU_S[0])

    def since(self) -> dict[str, Any]:
        """Run's by_thread, switches and gc_s since this mark (read before threads end)."""
        before, after = self.switches, _switches()
        switches = None if before is None or after is None else after - before
        by_thread = _by_thread(self.threads, _thread_cpu())
        return {"by_thread": by_thread, "switches": switches, "gc_s": _GC_CPU_S[0] - self.gc_s}


def _switches() -> int | None:
    """Context switches (voluntary and not) of this process's threads alive now (Linux).

    Threads that ended between two readings drop out; a round's dispatcher threads live
    through it."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    total = 0
    for task in tasks.iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        total += sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return total


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process so far (Linux; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    spent: dict[int, float] = {}
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else ():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue  # a thread that ended meanwhile
        spent[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return spent


def _by_thread(before: dict[int, float], after: dict[int, float]) -> dict[str, float] | None:
    """CPU seconds spent between two readings, by kind: workers, feeder, the rest."""
    if not after:
        return None
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    kinds = {"workers": 0.0, "feeder": 0.0, "rest": 0.0}
    for tid, seconds in after.items():
        name = names.get(tid, "")
        kind = "workers" if name.startswith("strangler-worker") else "rest"
        kind = "feeder" if name == "strangler-feeder" else kind
        kinds[kind] += seconds - before.get(tid, 0.0)
    return kinds


def _insert_at_once(ledger: SqlLedger, orders: list[OrderNotification]) -> None:
    """Take orders in as record_received does, in one transaction (the ledger's own
    statement: a bench may reach into it)."""
    now = datetime.now(UTC)
    rows = [
        {
            "order_id": order.order_id,
            "notification": stored_notification(order),
            "source": "bench",
            "status": "received",
            "received_at": now,
            "updated_at": now,
            "needs_dispatch": True,
            "next_attempt_at": now,
            "attempts": 0,
        }
        for order in orders
    ]
    with ledger.engine.begin() as conn:
        conn.execute(statements.INSERT_ORDER, rows)


def _round_in_processes(
    data: Path, count: int, processes: int, workers: int, routing_cpus: str
) -> Run:
    """Route the round's orders with ``processes`` routing processes on the one ledger."""
    command = [sys.executable, __file__, "--child", str(data), "--workers", str(workers)]
    command += ["--routing-cpus", routing_cpus]
    with ExitStack() as stack:
        children = [
            stack.enter_context(
                subprocess.Popen(
                    [*command, "--child-index", str(index)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for index in range(processes)
        ]
        for child in children:  # built and ready before the clock starts
            if _line(child) != "ready":
                raise RuntimeError(f"a routing process ended before it was ready: {command}")
        start = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = [json.loads(_line(child) or "{}") for child in children]
        seconds = time.perf_counter() - start
    cpu_s = sum(float(report.get("cpu_s", 0.0)) for report in reports)
    return Run(count - _left(data), seconds, cpu_s, _latencies(data))


def _line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return child.stdout.readline().strip()


def _child(data: Path, workers: int, routing_cpus: str, index: int) -> None:
    """One routing process of instant-fake-procs: ready, then route until nothing waits."""
    with (data / f"routing-{os.getpid()}.log").open("w") as log, ExitStack() as pinned:
        _log_to(log)
        pinned.enter_context(_pinned(routing_cpus, index))
        runtime = _runtime(data, "instant-fake-procs", "", workers)
        print("ready", flush=True)
        sys.stdin.readline()
        cpu = time.process_time()
        runtime.start()
        _wait_dispatched(data, time.perf_counter() + TIME_CAP_S)
        print(json.dumps({"cpu_s": time.process_time() - cpu}), flush=True)
        runtime.stop(10)


def _wait_dispatched(data: Path, deadline: float) -> None:
    """Until no order waits for dispatch (or the deadline): a cheap read every 5 ms, on one
    read-only connection kept open (opening one per read cost the routing process ~4 %)."""
    with closing(_read_only(data)) as db:
        while _waiting(db, any_at_all=True) and time.perf_counter() < deadline:
            time.sleep(POLL_S)


def _left(data: Path) -> int:
    """Orders still waiting for dispatch at the end of a round."""
    with closing(_read_only(data)) as db:
        return _waiting(db)


def _read_only(data: Path) -> sqlite3.Connection:
    uri = f"file:{data / 'ledger.sqlite3'}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)


def _latencies(data: Path) -> tuple[float, ...]:
    """Each timed instant order's time from routed to terminal, in ms (the round's own
    orders: the warm case's earlier ones are left out; a legacy order's end is the batch
    jobs' time, not the strangler's)."""
    query = (
        "SELECT routed_at, terminal_at FROM orders WHERE order_id NOT LIKE 'wm-%' "
        "AND path = 'instant' AND routed_at IS NOT NULL AND terminal_at IS NOT NULL"
    )
    with closing(_read_only(data)) as db:
        rows = db.execute(query).fetchall()
    return tuple(
        (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000
        for start, end in rows
    )


def _percentile(values: Sequence[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def _ms(value: float | None) -> str:
    """A latency for the table; "-" where no order ended (legacy: the batch jobs end it)."""
    return "-" if value is None else f"{value:.1f}"


def _waiting(db: sqlite3.Connection, *, any_at_all: bool = False) -> int:
    """Orders waiting for dispatch (with ``any_at_all``, 1 if there is any)."""
    query = "SELECT count(*) FROM orders WHERE needs_dispatch = 1"
    if any_at_all:
        query = "SELECT EXISTS (SELECT 1 FROM orders WHERE needs_dispatch = 1)"
    return int(db.execute(query).fetchone()[0])


def _profile(work: Path, count: int) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("profile: skipped: py-spy not installed (pip install 'strangler[bench]')")
        return
    work.mkdir()
    command = [sys.executable, __file__, "--cases", "instant-fake", "--rounds", "1"]
    command += ["--orders", str(count * PROFILE_ORDERS_FACTOR)]
    raw = work / "profile.txt"
    spy_options = ["--gil", "--nonblocking", "--rate", str(PROFILE_RATE_HZ), "--format", "raw"]
    subprocess.run(
        [spy, "record", *spy_options, "--output", str(raw), "--", *command],
        check=True,
        timeout=TIME_CAP_S * 2,
        env={**os.environ, "ROUTING_BENCH_NO_RESULTS": "1"},
        capture_output=True,
    )
    PROFILE.parent.mkdir(exist_ok=True)
    PROFILE.write_text(_top_frames(raw))
    print(f"profile: instant-fake under py-spy, top own-time frames in {PROFILE}")


class _Meter:
    """CPU seconds spent in wrapped callables, by part (nested parts are not subtracted)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, part: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent = time.process_time() - started
                self.seconds[part] = self.seconds.get(part, 0.0) + spent

        return timed


def _parts(count: int) -> None:
    """Print one order's CPU by part, from a single-threaded claim-and-process loop."""
    with (
        tempfile.TemporaryDirectory(prefix="strangler-parts-") as tmp,
        open(os.devnull, "w") as log,
    ):
        _log_to(log)
        seconds = _parts_run(Path(tmp) / "data", count)
    per_order = {part: s * 1000 / count for part, s in seconds.items()}
    per_order["executor"] -= per_order["steps_from_history"]  # measured inside it
    total = per_order.pop("total")
    per_order["router, backend, leases"] = total - sum(per_order.values())
    print(f"routing parts, single-threaded, {count} orders: {total:.3f} ms CPU per order")
    for part, ms in per_order.items():
        print(f"  {part:<26}{ms:>7.3f} ms")


def _parts_run(data: Path, count: int) -> dict[str, float]:
    data.mkdir(parents=True)
    ledger = ledger_from_url(f"sqlite:///{data / 'ledger.sqlite3'}")
    warm_up = min(500, count)
    _insert_at_once(ledger, [_notification(f"wm-{uuid.uuid4().hex}") for _ in range(warm_up)])
    _insert_at_once(ledger, [_notification(f"rt-{uuid.uuid4().hex}") for _ in range(count)])
    ledger.close()
    runtime = _runtime(data, "instant-fake", "", 1)
    meter = _Meter()
    led, instant = runtime.ledger, runtime.instant
    assert isinstance(instant, LocalBackend)
    for name, part in (
        ("claim_due", "claim"),
        ("pin_decision", "pin_decision"),
        ("finish", "finish"),
    ):
        setattr(led, name, meter.wrap(part, getattr(led, name)))
    # The backend's end callback (the record, the steps) runs inside start_then when
    # nothing waits: "executor" holds it, less the steps (not timed apart: a meter costs
    # about 2 us an order, more than the callback's own share).
    machine = instant.machine
    machine.start_then = meter.wrap("executor", machine.start_then)  # type: ignore[method-assign]
    steps = local_backend.steps_from_history
    local_backend.steps_from_history = meter.wrap("steps_from_history", steps)  # type: ignore[attr-defined]
    # Every log line that passes the level goes through this method of structlog's.
    emit = BoundLoggerBase._proxy_to_logger
    BoundLoggerBase._proxy_to_logger = meter.wrap("log lines", emit)  # type: ignore[method-assign]
    try:
        _loop(runtime, warm_up)
        meter.seconds.clear()
        started = time.process_time()
        _loop(runtime, count)
        meter.seconds["total"] = time.process_time() - started
    finally:
        local_backend.steps_from_history = steps  # type: ignore[attr-defined]
        BoundLoggerBase._proxy_to_logger = emit  # type: ignore[method-assign]
        runtime.stop()  # never started: closes what it built (the flag file's timer too)
    return meter.seconds


def _loop(runtime: Runtime, count: int) -> None:
    """Claim and process ``count`` orders on this thread, as one dispatcher worker would."""
    owner, done = runtime.dispatcher.owner, 0
    # As the dispatcher claims: pinning in the claim where the router offers it.
    decide = getattr(runtime.router, "decide_claimed", None)
    extra = {} if decide is None else {"decide": decide}
    while done < count:
        limit = min(8, count - done)
        orders = runtime.ledger.claim_due(owner, limit=limit, lease_seconds=30, **extra)
        if not orders:
            raise RuntimeError(f"only {done} of {count} orders were due")
        for order in orders:
            disposition = runtime.router.process(order, Lease(order.order_id, owner))
            if not disposition.released:
                runtime.ledger.release_lease(order.order_id, owner, done=disposition.done)
            done += 1


def _top_frames(raw: Path, top: int = 25) -> str:
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    rows = sorted(own.items(), key=lambda item: -item[1])[:top]
    lines = [f"{n * 100 / total:6.1f}%  {frame}" for frame, n in rows]
    return f"py-spy samples: {total}; own time by frame\n" + "\n".join(lines) + "\n"


def _per_order_extras(case_runs: list[Run], summary: dict[str, Any]) -> str:
    """The GC's CPU (part of the threads' above) and the thread switches, per order."""
    counted = [r for r in case_runs if r.orders]
    gc_ms = [r.gc_s * 1000 / r.orders for r in counted if r.gc_s is not None]
    switches = [r.switches / r.orders for r in counted if r.switches is not None]
    text = ""
    if gc_ms:
        summary["gc_cpu_ms_per_order"] = round(statistics.median(gc_ms), 3)
        text += f" (of which GC {statistics.median(gc_ms):.2f})"
    if switches:
        summary["thread_switches_per_order"] = round(statistics.median(switches), 2)
        text += f"; {statistics.median(switches):.1f} thread switches per order"
    return text


def _report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    print(
        f"routing benchmark ({os.cpu_count()} CPUs): {args.orders} orders per round, "
        f"{args.rounds} rounds, {args.workers} dispatcher workers per routing process, "
        f"{args.processes} processes in instant-fake-procs, SQLite ledger; "
        f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )
    print(
        f"{'case':<22}{'orders/s':>10}{'min-max':>16}{'CPU ms/order':>14}{'routed':>8}"
        f"{'p50 ms':>9}{'p99 ms':>9}"
    )
    summary = {}
    for case, case_runs in runs.items():
        rates = [r.per_s for r in case_runs]
        median = statistics.median(rates)
        cpu = statistics.median(r.cpu_ms_per_order for r in case_runs)
        routed = min(r.orders for r in case_runs)
        span = f"{min(rates):.0f}-{max(rates):.0f}"
        latencies = [ms for r in case_runs for ms in r.latencies_ms]
        p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
        print(
            f"{case:<22}{median:>10.0f}{span:>16}{cpu:>14.2f}{routed:>8}{_ms(p50):>9}{_ms(p99):>9}"
        )
        summary[case] = {
            "orders_per_s": round(median),
            "min": round(min(rates)),
            "max": round(max(rates)),
            "cpu_ms_per_order": round(cpu, 3),
            "routed_to_terminal_p50_ms": None if p50 is None else round(p50, 2),
            "routed_to_terminal_p99_ms": None if p99 is None else round(p99, 2),
        }
    for case, case_runs in runs.items():
        split = [(r.by_thread, r.orders) for r in case_runs if r.by_thread and r.orders]
        if split:
            share = {
                kind: statistics.median(by[kind] * 1000 / orders for by, orders in split)
                for kind in split[0][0]
            }
            summary[case]["cpu_ms_per_order_by_thread"] = {k: round(v, 3) for k, v in share.items()}
            parts = ", ".join(f"{kind} {ms:.2f}" for kind, ms in share.items())
            extra = _per_order_extras(case_runs, summary[case])
            print(f"{case}: CPU ms per order by thread: {parts}{extra}")
    for case, case_runs in runs.items():
        counted = [r.claims / r.orders for r in case_runs if r.claims is not None and r.orders]
        if counted:
            per_order = statistics.median(counted)
            summary[case]["claims_per_order"] = round(per_order, 2)
            print(f"{case}: {per_order:.2f} claims per order (median)")
    for case in ("instant-fake", "instant-fake-procs", "instant-fake-warm"):
        if case in summary:
            # The target is per routing process: instant-fake-procs' rate is its processes'.
            processes = args.processes if case == "instant-fake-procs" else 1
            rate = round(summary[case]["orders_per_s"] / processes)
            cpu_ms = summary[case]["cpu_ms_per_order"]
            verdict = "met" if rate >= TARGET_PER_S else "MISSED"
            cpu_verdict = "met" if cpu_ms <= TARGET_CPU_MS else "MISSED"
            print(
                f"{case}: {rate} orders/s per routing process (target >= {TARGET_PER_S:.0f}, "
                f"{verdict}); {cpu_ms:.2f} ms CPU per order (target <= {TARGET_CPU_MS}, "
                f"{cpu_verdict})"
            )
    if os.environ.get("ROUTING_BENCH_NO_RESULTS"):
        return
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"orders": args.orders, "cases": summary}, indent=2) + "\n")


if __name__ == "__main__":
    exit_on_sigterm()
    main()
