"""Benchmark order intake: notifications accepted per second with the durable SQLite ledger.

Runs ``strangler serve`` (SQLite ledger in WAL mode in a fresh temporary data dir each
time) in three set-ups, one after the other in one run, and POSTs unique notifications
to ``/_strangler/notifications`` from each number of keep-alive connections with wrk (a
bounded Python generator when wrk is missing):

- ``alone``: ``serve --intake-only``, nothing processes the orders (the intake's own
  figure); first, one notification sent over and over (duplicates);
- ``dispatcher``: ``serve`` as deployed by default, its dispatcher routing each new order
  in the same worker processes (the realistic figure);
- ``worker``: ``serve --intake-only`` with a ``strangler worker`` process beside it on
  the same SQLite file (intake and processing in separate processes);
- ``process``: ``serve --routing process``, one command whose routing runs in a child
  process of its own (the split of ``worker``, supervised by ``serve``).

Every 2xx means the order was durable in the ledger before the answer; the ledger is
counted afterwards to prove it, with how many orders were processed (routed) by the end
of the load. The same number of ``record_received`` calls is then timed in this process
with nothing else running (the ledger's own ceiling). The machine's load average is
printed before and after: the figures are only as good as the machine was quiet.

Targets: at least 1,500 notifications/s with p99 at most 20 ms (issue 10, split
mode). Results also go to bench/results/intake.json.

    .venv/bin/python bench/intake.py [--seconds 5] [--workers 2] [--modes alone dispatcher]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from _load import READY_TIMEOUT_S, Result, have, python_load, wrk

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.ledger import ledger_from_url
from strangler.orders import OrderNotification

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "intake.json"
TOKEN = secrets.token_urlsafe(16)
ENDPOINT = "/_strangler/notifications"
MAX_PYTHON_REQUESTS = 30_000
MAX_LEDGER_ALONE = 5_000
RATE_TARGET = 1500.0
P99_TARGET_MS = 20.0
_LUA = """
local counter = 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"order_id":"%(prefix)s-%%d-%%d","user_guid":"u-%%d","unit_id":"unit-%%d","city":"nyc"}',
    tid, counter, counter %% 997, counter %% 13)
  return wrk.format("POST", "%(endpoint)s",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}, body)
end
"""


_LUA_SAME = """
wrk.method = "POST"
wrk.body = '{"order_id":"%(prefix)s-same","user_guid":"u-1","unit_id":"unit-1"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


MODES = {
    "alone": "serve --intake-only: nothing processes the orders",
    "dispatcher": "serve: its dispatcher routes each order in the same processes",
    "worker": "serve --intake-only + one `strangler worker` process on the same SQLite file",
    "process": "serve --routing process: routing in serve's own child process",
}


@dataclass(frozen=True)
class ModeRun:
    """One set-up's runs: per connection count, and the ledger counted afterwards."""

    runs: dict[int, Result]
    answered: int
    in_ledger: int
    processed: int
    duplicates: Result | None = None


def main() -> None:
    """Run each set-up at each concurrency, count the ledger, print the table and verdicts."""
    args = _parse_args()
    use_wrk = have("wrk") and not args.python_load
    load = "wrk" if use_wrk else "python load generator (wrk not installed)"
    load_before = _load_average()
    modes: dict[str, ModeRun] = {}
    with tempfile.TemporaryDirectory(prefix="strangler-intake-") as tmp:
        work = Path(tmp)
        for mode in args.modes:
            modes[mode] = _run_mode(work / mode, mode, args, use_wrk)
        count = min(max(m.in_ledger for m in modes.values()), MAX_LEDGER_ALONE)
        ceiling = _ledger_alone(work / "alone.sqlite3", count)
    _report(modes, args, load, ceiling, (load_before, _load_average()))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per run (default 5)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=1, help="sidecar worker processes")
    parser.add_argument("--threads", type=int, default=16, help="sidecar threads per worker")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    return parser.parse_args()


def _run_mode(work: Path, mode: str, args: argparse.Namespace, use_wrk: bool) -> ModeRun:
    work.mkdir()
    runs: dict[int, Result] = {}
    duplicates = None
    with _sidecar(work, args.workers, args.threads, mode) as url:
        if mode == "alone":
            duplicates = _run(work, url, max(args.connections), args.seconds, use_wrk, same=True)
        for connections in args.connections:
            runs[connections] = _run(work, url, connections, args.seconds, use_wrk)
        # Counted while still running: what the processing kept up with during the load.
        in_ledger, processed = _count_orders(work / "sidecar" / "ledger.sqlite3")
    answered = sum(r.requests - r.errors for r in runs.values())
    same = 1 if duplicates is not None else 0
    return ModeRun(runs, answered, in_ledger - same, processed, duplicates)


@contextmanager
def _sidecar(work: Path, workers: int, threads: int, mode: str) -> Iterator[str]:
    data = work / "sidecar"
    data.mkdir()
    flags = data / "flags.json"
    shutil.copy(REPO / "flags" / "city_orders_instant_processing.json", flags)
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "STRANGLER_DATA_DIR": str(data),
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": dead,
        "STRANGLER_LEGACY_URL": dead,
        "STRANGLER_ADMIN_TOKEN": TOKEN,
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_SERVE_WORKERS": str(workers),
        "STRANGLER_SERVE_THREADS": str(threads),
        "STRANGLER_LOG_FORMAT": "json",
    }
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "strangler", "serve"]
    if mode == "process":
        serve += ["--routing", "process"]
    elif mode != "dispatcher":
        serve.append("--intake-only")
    with ExitStack() as stack:
        stack.enter_context(
            running(
                serve, ready_url=f"{url}/_strangler/healthz", log_path=data / "sidecar.log", env=env
            )
        )
        if mode == "worker":
            stack.enter_context(_worker(data, env))
        yield url


@contextmanager
def _worker(data: Path, env: dict[str, str]) -> Iterator[None]:
    """A ``strangler worker`` on the sidecar's ledger (ready once its log says so)."""
    log = data / "worker.log"
    args = [sys.executable, "-m", "strangler", "worker"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while b"runtime_started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"strangler worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(
    work: Path, url: str, connections: int, seconds: float, use_wrk: bool, *, same: bool = False
) -> Result:
    """Unique notifications (or, with ``same``, one notification over and over)."""
    prefix = f"b{connections}-{uuid.uuid4().hex[:6]}"
    if use_wrk:
        script = work / f"intake-{prefix}.lua"
        template = _LUA_SAME if same else _LUA
        script.write_text(template % {"prefix": prefix, "endpoint": ENDPOINT, "token": TOKEN})
        return wrk(url + ENDPOINT, connections, seconds, script=script)

    def make(thread: int, n: int) -> tuple[str, str, bytes, dict[str, str]]:
        order_id = f"{prefix}-same" if same else f"{prefix}-{thread}-{n}"
        body = {"order_id": order_id, "user_guid": f"u-{n % 997}", "unit_id": "u"}
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        return "POST", ENDPOINT, json.dumps(body).encode(), headers

    return python_load(url, connections, seconds, max_requests=MAX_PYTHON_REQUESTS, make=make)


def _ledger_alone(path: Path, count: int) -> Result:
    """``count`` record_received calls in a row on a fresh SQLite ledger, in this process."""
    ledger = ledger_from_url(f"sqlite:///{path}")
    latencies = []
    started = time.perf_counter()
    try:
        for n in range(count):
            order = OrderNotification(order_id=f"alone-{n}", user_guid=f"u-{n % 997}", unit_id="u")
            begun = time.perf_counter()
            ledger.record_received(order, source="bench")
            latencies.append(time.perf_counter() - begun)
    finally:
        ledger.close()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(count, elapsed, cuts[49] * 1000, cuts[98] * 1000, 0)


def _count_orders(ledger: Path) -> tuple[int, int]:
    """Orders in the ledger, and how many of them were processed (routed) already."""
    with sqlite3.connect(ledger) as conn:
        total, processed = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status != 'received') FROM orders"
        ).fetchone()
    return int(total), int(processed)


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _report(
    modes: dict[str, ModeRun],
    args: argparse.Namespace,
    load: str,
    ceiling: Result,
    load_average: tuple[str, str],
) -> None:
    print(
        f"intake benchmark on 127.0.0.1 ({os.cpu_count()} CPUs): POST {ENDPOINT}, SQLite "
        f"ledger (WAL, synchronous=NORMAL), {args.seconds:g}s per run, load from {load}; "
        f"sidecar: {args.workers} worker process(es) x {args.threads} threads"
    )
    print(f"load average before: {load_average[0]}, after: {load_average[1]}")
    for mode, run in modes.items():
        print(f"\n{mode}: {MODES[mode]}")
        print(f"{'conns':>6}{'accepted/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for connections, r in run.runs.items():
            print(f"{connections:>6}{r.rps:>12.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}")
        print(
            f"answered 2xx: {run.answered}; in the ledger: {run.in_ledger} (more: requests "
            f"in flight when the load stopped); processed by the end of the load: {run.processed}"
        )
        if run.duplicates is not None:
            d = run.duplicates
            print(
                f"one order over and over (duplicates) at {max(run.runs)} conns: {d.rps:.0f}/s, "
                f"p50 {d.p50_ms:.2f} ms, p99 {d.p99_ms:.2f} ms"
            )
        print(f"verdict: {_verdict(run)}")
    print(
        f"\nledger alone (record_received in a row, no HTTP, no dispatcher): {ceiling.rps:.0f}/s, "
        f"p50 {ceiling.p50_ms:.2f} ms, p99 {ceiling.p99_ms:.2f} ms"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    summary = {
        "load": load,
        "seconds": args.seconds,
        "workers": args.workers,
        "threads": args.threads,
        "load_average": {"before": load_average[0], "after": load_average[1]},
        "modes": {
            mode: {
                "runs": {str(c): _summary(r) for c, r in run.runs.items()},
                "answered_2xx": run.answered,
                "in_ledger": run.in_ledger,
                "processed": run.processed,
                "met": _met(run) is not None,
                **({"duplicates": _summary(run.duplicates)} if run.duplicates else {}),
            }
            for mode, run in modes.items()
        },
        "ledger_alone": _summary(ceiling),
    }
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")


def _met(run: ModeRun) -> int | None:
    """The highest-rate connection count meeting both targets, or None."""
    meeting = [
        (r.rps, c)
        for c, r in run.runs.items()
        if r.rps >= RATE_TARGET and r.p99_ms <= P99_TARGET_MS and not r.errors
    ]
    return max(meeting)[1] if meeting else None


def _verdict(run: ModeRun) -> str:
    met = _met(run)
    if met is not None:
        r = run.runs[met]
        return f"target met at {met} conns: {r.rps:.0f}/s, p99 {r.p99_ms:.2f} ms"
    best = max(run.runs.values(), key=lambda r: r.rps)
    return (
        f"target (>= {RATE_TARGET:.0f}/s with p99 <= {P99_TARGET_MS:.0f} ms) MISSED; "
        f"best {best.rps:.0f}/s "
        f"with p99 {best.p99_ms:.2f} ms"
    )


def _summary(result: Result) -> dict[str, float]:
    return {
        "per_s": round(result.rps),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "errors": result.errors,
    }


if __name__ == "__main__":
    exit_on_sigterm()
    main()
