"""Benchmark what Prometheus scrapes of ``/metrics`` cost the intake on a big ledger (issue 18, §3).

Fills a SQLite ledger with ``--orders`` ended orders (strangler.ledger.synthetic; or
reuses ``--ledger``, a copy of which is served), runs ``strangler serve`` on it with
shipped defaults (bench/report_load.py's set-up), and interleaves two set-ups round by
round: order notifications at ``--rate`` a second for ``--seconds`` (an open-loop
schedule), with no scrape, and with a ``GET /metrics`` every ``--interval`` seconds
(Prometheus' usual 15 s; the first 1 s into the run). Prints each scrape's latency and
the intake's p50 / p99 / max per set-up, and the load average: on a shared machine,
compare set-ups within one run.

Run it with another checkout's interpreter (``<checkout>/.venv/bin/python
bench/scrape_load.py``, from outside that checkout) for the code before a change: it
uses only the CLI and HTTP.

    .venv/bin/python bench/scrape_load.py [--orders 1000000] [--rounds 2] [--seconds 32]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from report_load import _fill, _paced, _sidecar

from strangler.demo.processes import exit_on_sigterm

SETUPS = ("no scrape", "scrape every interval")


def main() -> None:
    """Fill (or copy), serve, run the set-ups round by round, print the table."""
    args = _parse_args()
    load_before = os.getloadavg()
    paced: dict[str, list[dict[str, float]]] = {name: [] for name in SETUPS}
    scrapes_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="strangler-scrape-load-") as tmp:
        work = Path(tmp)
        path = work / "ledger.sqlite3"
        if args.ledger is not None:
            shutil.copy(args.ledger, path)
        else:
            _fill(f"sqlite:///{path}", args.orders)
        with _sidecar(work, f"sqlite:///{path}") as (base, _pid):
            for round_no in range(args.rounds):
                for name in SETUPS:
                    interval = args.interval if name != SETUPS[0] else None
                    prefix = f"r{round_no}-{SETUPS.index(name)}-{secrets.token_hex(3)}"
                    with _scraping(base, interval, scrapes_s):
                        result = _paced(base, args.rate, args.seconds, prefix)
                    paced[name].append(result.summary())
    _print(args, paced, scrapes_s, (load_before, os.getloadavg()))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="ledger history")
    parser.add_argument("--ledger", type=Path, help="a filled SQLite ledger to copy instead")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every set-up")
    parser.add_argument("--seconds", type=float, default=32.0, help="paced run length")
    parser.add_argument("--rate", type=float, default=200.0, help="paced notifications/s")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes")
    args = parser.parse_args()
    if min(args.orders, args.rounds, args.seconds, args.rate, args.interval) <= 0:
        parser.error("--orders, --rounds, --seconds, --rate and --interval must be positive")
    if args.ledger is not None and not args.ledger.is_file():
        parser.error(f"--ledger {args.ledger}: no such file")
    return args


def _scrape(base: str) -> float:
    """One ``GET /metrics``; seconds."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=120)
    try:
        conn.request("GET", "/metrics")
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"/metrics answered {answer.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


@contextmanager
def _scraping(base: str, interval: float | None, times: list[float]) -> Iterator[None]:
    """Scrapes every ``interval`` seconds on a thread while the block runs (none if None)."""
    if interval is None:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        wait = 1.0
        while not stop.wait(wait):
            times.append(_scrape(base))
            wait = interval

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _print(
    args: argparse.Namespace,
    paced: dict[str, list[dict[str, float]]],
    scrapes_s: list[float],
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    print(
        f"{args.orders if args.ledger is None else args.ledger} orders, {args.rate:g}/s for "
        f"{args.seconds:g} s, scrape every {args.interval:g} s, {args.rounds} rounds; "
        f"load {loads[0][0]:.1f} -> {loads[1][0]:.1f}"
    )
    if scrapes_s:
        print(
            f"scrape: median {statistics.median(scrapes_s) * 1000:.1f} ms, "
            f"max {max(scrapes_s) * 1000:.1f} ms ({len(scrapes_s)} scrapes)"
        )
    print(f"{'set-up':<24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'refused':>9}")
    for name, runs in paced.items():
        p50 = statistics.median(r["p50_ms"] for r in runs)
        p99 = statistics.median(r["p99_ms"] for r in runs)
        worst = max(r["max_ms"] for r in runs)
        refused = sum(r["refused"] + r["unsent"] for r in runs)
        print(f"{name:<24}{p50:>9.1f}{p99:>9.1f}{worst:>9.1f}{refused:>9.0f}")


if __name__ == "__main__":
    exit_on_sigterm()
    main()
