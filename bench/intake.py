"""Benchmark order intake: notifications accepted per second with the durable SQLite ledger.

Starts ``strangler serve`` (one worker process, its dispatcher routing what comes in,
the SQLite ledger in WAL mode in a temporary data dir) and POSTs unique notifications to
``/_strangler/notifications`` from 1, 8 and 32 keep-alive connections with wrk (a
bounded Python generator when wrk is missing). Every 202 means the order was durable in
the ledger before the answer; the ledger is counted afterwards to prove it. First, one
notification is sent over and over (duplicates: the HTTP path and the ledger's insert,
with nothing new for the dispatcher), which shows the intake path's own capacity.

For scale, the same number of SQLite ``record_received`` calls is then timed in this
process with nothing else running (the ledger's own ceiling, no HTTP, no dispatcher).

Targets: at least 1,000 notifications/s with p99 at most 20 ms. Results also go to
bench/results/intake.json.

    .venv/bin/python bench/intake.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _load import Result, free_port, have, python_load, running, wrk

from strangler.ledger import ledger_from_url
from strangler.orders import OrderNotification

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "intake.json"
TOKEN = secrets.token_urlsafe(16)
ENDPOINT = "/_strangler/notifications"
MAX_PYTHON_REQUESTS = 30_000
MAX_LEDGER_ALONE = 5_000
RATE_TARGET = 1000.0
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


def main() -> None:
    """Run intake at each concurrency, count the ledger, print the table and verdicts."""
    args = _parse_args()
    use_wrk = have("wrk") and not args.python_load
    load = "wrk" if use_wrk else "python load generator (wrk not installed)"
    results: dict[int, Result] = {}
    with tempfile.TemporaryDirectory(prefix="strangler-intake-") as tmp:
        work = Path(tmp)
        with _sidecar(work, args.workers, args.threads) as url:
            duplicates = _run(work, url, max(args.connections), args.seconds, use_wrk, same=True)
            for connections in args.connections:
                results[connections] = _run(work, url, connections, args.seconds, use_wrk)
        in_ledger = _count_orders(work / "sidecar" / "ledger.sqlite3") - 1
        ceiling = _ledger_alone(work / "alone.sqlite3", min(in_ledger, MAX_LEDGER_ALONE))
    _report(results, args, load, in_ledger, ceiling, duplicates)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per run (default 5)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1, help="sidecar worker processes")
    parser.add_argument("--threads", type=int, default=16, help="sidecar threads per worker")
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    return parser.parse_args()


@contextmanager
def _sidecar(work: Path, workers: int, threads: int) -> Iterator[str]:
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
    args = [sys.executable, "-m", "strangler", "serve"]
    with running(args, ready_url=f"{url}/_strangler/healthz", log=data / "sidecar.log", env=env):
        yield url


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


def _count_orders(ledger: Path) -> int:
    with sqlite3.connect(ledger) as conn:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])


def _report(
    results: dict[int, Result],
    args: argparse.Namespace,
    load: str,
    in_ledger: int,
    ceiling: Result,
    duplicates: Result,
) -> None:
    print(
        f"intake benchmark on 127.0.0.1: POST {ENDPOINT}, SQLite ledger (WAL), "
        f"{args.seconds:g}s per run, load from {load}; "
        f"{args.workers} worker(s) x {args.threads} threads"
    )
    print(f"{'conns':>6}{'accepted/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for connections, r in results.items():
        print(f"{connections:>6}{r.rps:>12.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}")
    accepted = sum(r.requests - r.errors for r in results.values())
    print(
        f"answered 2xx: {accepted}; orders in the ledger afterwards: {in_ledger} "
        "(more: requests in flight when the load stopped)"
    )
    print(
        f"one order sent over and over (duplicates: HTTP and the ledger's insert, nothing "
        f"new to process) at {max(results)} conns: {duplicates.rps:.0f}/s, "
        f"p50 {duplicates.p50_ms:.2f} ms, p99 {duplicates.p99_ms:.2f} ms"
    )
    print(
        f"ledger alone (record_received in a row, no HTTP, no dispatcher): {ceiling.rps:.0f}/s, "
        f"p50 {ceiling.p50_ms:.2f} ms, p99 {ceiling.p99_ms:.2f} ms"
    )
    best = max(results.values(), key=lambda r: r.rps)
    met = best.rps >= RATE_TARGET and best.p99_ms <= P99_TARGET_MS
    print(
        f"best: {best.rps:.0f}/s with p99 {best.p99_ms:.2f} ms "
        f"(target >= 1000/s with p99 <= 20 ms: {'met' if met else 'MISSED'})"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    runs = {str(c): _summary(r) for c, r in results.items()}
    RESULTS.write_text(
        json.dumps(
            {
                "load": load,
                "seconds": args.seconds,
                "runs": runs,
                "answered_2xx": accepted,
                "in_ledger": in_ledger,
                "met": met,
                "duplicates": _summary(duplicates),
                "ledger_alone": _summary(ceiling),
            },
            indent=2,
        )
        + "\n"
    )


def _summary(result: Result) -> dict[str, float]:
    return {
        "per_s": round(result.rps),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "errors": result.errors,
    }


if __name__ == "__main__":
    main()
