"""Benchmark the legacy adapter and simulator on this machine (loopback only).

Starts ``strangler legacy-sim`` on a free loopback port with a fresh database (jobs only
on demand), then measures:

1. the adapter's round-trip time per call (p50, p90, p99), one call at a time;
2. how many ``POST /orders`` per second the simulator accepts from concurrent clients.

Bounded: a fixed number of requests per measurement and a time cap on each.

    .venv/bin/python bench/legacy.py [--calls 300] [--orders 3000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.legacy_adapter import LegacyClient

RESULTS = Path(__file__).parent / "results" / "legacy.json"
TIME_CAP_S = 30.0


def main() -> None:
    """Run the benchmark and print a table."""
    args = _parse_args()
    with _simulator(args.url) as url:
        rows = _round_trips(url, args.calls)
        throughput = _post_orders_per_second(url, args.orders, args.threads)
    print(f"legacy adapter round trip against {url} ({args.calls} calls each, sequential)")
    print(f"{'call':<28}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'calls/s':>10}")
    for name, samples in rows.items():
        p50, p90, p99 = _percentiles(samples)
        rate = len(samples) / sum(samples)
        print(f"{name:<28}{p50:>10.2f}{p90:>10.2f}{p99:>10.2f}{rate:>10.0f}")
    print()
    print(
        f"POST /orders accepted: {throughput['orders']} orders from {args.threads} threads "
        f"in {throughput['seconds']:.2f}s = {throughput['per_second']:.0f} orders/s "
        f"({throughput['errors']} errors)"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    summary = {
        name: dict(zip(("p50_ms", "p90_ms", "p99_ms"), _percentiles(s), strict=True))
        for name, s in rows.items()
    }
    RESULTS.write_text(json.dumps({"round_trip": summary, "post_orders": throughput}, indent=2))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per measured operation")
    parser.add_argument("--orders", type=int, default=3000, help="orders for the throughput run")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients posting")
    parser.add_argument("--url", help="use a running simulator instead of starting one")
    args = parser.parse_args()
    if not (1 <= args.calls <= 10_000 and 1 <= args.orders <= 100_000 and 1 <= args.threads <= 64):
        parser.error("keep --calls <= 10000, --orders <= 100000, --threads <= 64")
    if args.url and not args.url.startswith(("http://127.", "http://localhost")):
        parser.error("--url must be a loopback address")
    return args


def _round_trips(url: str, calls: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}
    with LegacyClient(url) as legacy:
        prefix = uuid.uuid4().hex[:8]
        ids = [f"bench-{prefix}-{i}" for i in range(calls)]
        rows["create_order"] = _timed(calls, lambda i: legacy.create_order(_order(ids[i])))
        rows["get_order"] = _timed(calls, lambda i: legacy.get_order(ids[i]))
        rows["claim"] = _timed(calls, lambda i: legacy.claim(ids[i]))
        rows["fraud_scan"] = _timed(calls, lambda i: legacy.fraud_scan(ids[i]))
        rows["fraud_scan (dry run)"] = _timed(
            calls, lambda i: legacy.fraud_scan(ids[i], dry_run=True)
        )
        rows["orders_updated_since x100"] = _timed(
            max(1, calls // 10), lambda _: legacy.orders_updated_since(None, limit=100)
        )
    return rows


def _post_orders_per_second(url: str, orders: int, threads: int) -> dict[str, float]:
    per_thread = orders // threads
    deadline = time.monotonic() + TIME_CAP_S

    def worker(index: int) -> tuple[int, int]:
        done = errors = 0
        with requests.Session() as session:
            for n in range(per_thread):
                if time.monotonic() > deadline:
                    break
                body = _order(f"tp-{uuid.uuid4().hex}-{index}-{n}")
                try:
                    response = session.post(f"{url}/orders", json=body, timeout=10)
                except requests.RequestException:
                    errors += 1
                    continue
                done += response.status_code == 201
                errors += response.status_code != 201
        return done, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(worker, range(threads)))
    seconds = time.perf_counter() - start
    accepted = sum(done for done, _ in results)
    return {
        "orders": accepted,
        "errors": sum(errors for _, errors in results),
        "seconds": seconds,
        "per_second": accepted / seconds,
        "threads": threads,
    }


def _timed(count: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    deadline = time.monotonic() + TIME_CAP_S
    for index in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - start)
    return samples


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    if len(samples) < 2:
        value = samples[0] * 1000 if samples else 0.0
        return value, value, value
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[89] * 1000, cuts[98] * 1000


def _order(order_id: str) -> dict[str, object]:
    return {
        "order_id": order_id,
        "user_guid": "bench-user",
        "unit_id": "unit-1",
        "city": "new-york",
        "amount_cents": 2500,
        "currency": "USD",
        "quantity": 1,
        "payment_token": "tok_bench_4242",
    }


@contextmanager
def _simulator(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="legacy-bench-") as workdir:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "strangler",
            "legacy-sim",
            "--port",
            str(port),
            "--db",
            str(Path(workdir) / "bench.sqlite3"),
            "--no-scheduler",
            "--log-format",
            "json",
        ]
        base = f"http://127.0.0.1:{port}"
        log_path = Path(workdir) / "sim.log"
        with running(command, ready_url=f"{base}/healthz", log_path=log_path, grace_s=15):
            yield base


if __name__ == "__main__":
    exit_on_sigterm()
    main()
