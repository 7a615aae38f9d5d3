"""Benchmark what the durable intake adds to the order route (``POST /orders``).

Since the proxy writes an intercepted order to the ledger before it answers, the order
route costs one durable INSERT more than any other proxied request. This bench measures
that, side by side in one run: two ``strangler serve --intake-only`` sidecars (SQLite
ledger, fresh data dirs) in front of the same order service (bench/_order_upstream.py
under gunicorn, a new order id per answer), one with the order route intercepted
(``durable``), one whose order route is another path so that ``POST /orders`` is plain
pass-through (``pass-through``); and the order service alone (``direct``). In front
mode (``serve --front nginx``, when nginx is installed) the same pair again: nginx
proxying ``POST /orders`` straight to the order service (``front-pass``), and nginx
sending it to the Python app on its unix socket, which writes it durably and proxies it
on (``front-durable``). Rounds alternate between the targets, one keep-alive connection
each; the table quotes the median of the rounds' p50 and p99, and the difference and
ratio to each mode's pass-through. Target: the durable intake and the Python hop add at
most 1.0 ms p50 in front mode (front-durable minus front-pass).

    .venv/bin/python bench/order_route.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _load import Result, python_load

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.exceptions import ConfigurationError
from strangler.sidecar.supervisor import find_nginx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MAX_REQUESTS = 50_000
_BODY = b'{"deal":1}'
_HEADERS = {"Content-Type": "application/json"}
FRONT_TARGET_MS = 1.0
# Each durable target and the pass-through it is measured against.
_BASES = {"durable": "pass-through", "front-durable": "front-pass"}


def main() -> None:
    """Run the rounds and print the table."""
    args = _parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="bench-order-route-"))
    try:
        with ExitStack() as stack:
            upstream = stack.enter_context(_upstream(work))
            targets = {
                "direct": upstream,
                "pass-through": stack.enter_context(
                    _sidecar(work, upstream, order_route="POST /not-the-order-route")
                ),
                "durable": stack.enter_context(
                    _sidecar(work, upstream, order_route="POST /orders")
                ),
            }
            if _have_nginx():
                targets["front-pass"] = stack.enter_context(
                    _sidecar(work, upstream, order_route="POST /not-the-order-route", front=True)
                )
                targets["front-durable"] = stack.enter_context(
                    _sidecar(work, upstream, order_route="POST /orders", front=True)
                )
            else:
                print("front mode: skipped, nginx is not installed (apt-get install nginx)")
            rounds: dict[str, list[Result]] = {name: [] for name in targets}
            for n in range(args.rounds):
                order = list(targets) if n % 2 == 0 else list(reversed(targets))
                for name in order:
                    rounds[name].append(_measure(targets[name], args.seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    _report(rounds)


def _measure(url: str, seconds: float) -> Result:
    def make(_thread: int, _n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "POST", "/orders", _BODY, _HEADERS

    return python_load(f"{url}/orders", 1, seconds, max_requests=MAX_REQUESTS, make=make)


def _report(rounds: dict[str, list[Result]]) -> None:
    p50s = {name: statistics.median(r.p50_ms for r in results) for name, results in rounds.items()}
    print(
        f"{'target':<15}{'rounds':>7}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p50 - its pass-through':>24}{'ratio':>7}{'errors':>8}"
    )
    for name, results in rounds.items():
        base = p50s[_BASES.get(name, name if name.startswith("front") else "pass-through")]
        p50 = p50s[name]
        p99 = statistics.median(r.p99_ms for r in results)
        requests = sum(r.requests for r in results)
        errors = sum(r.errors for r in results)
        print(
            f"{name:<15}{len(results):>7}{requests:>10}{p50:>9.3f}{p99:>9.3f}"
            f"{p50 - base:>+24.3f}{p50 / base:>7.2f}{errors:>8}"
        )
    if "front-durable" in p50s:
        added = p50s["front-durable"] - p50s["front-pass"]
        verdict = "met" if added <= FRONT_TARGET_MS else "MISSED"
        print(
            f"front mode: the durable intake and the Python hop add {added:+.3f} ms p50 "
            f"(target <= {FRONT_TARGET_MS:.1f} ms, {verdict})"
        )


def _have_nginx() -> bool:
    try:
        find_nginx()
    except ConfigurationError:  # not installed: the bench says so and goes on
        return False
    return True


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per target")
    return parser.parse_args()


@contextmanager
def _upstream(work: Path) -> Iterator[str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--chdir",
        str(BENCH),
        "_order_upstream:app",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(args, ready_url=f"{url}/ready", log_path=work / "upstream.log"):
        yield url


@contextmanager
def _sidecar(work: Path, upstream: str, *, order_route: str, front: bool = False) -> Iterator[str]:
    port = free_port()
    data = work / f"sidecar-{uuid.uuid4().hex[:8]}"
    data.mkdir()
    flags = data / "flags.json"
    shutil.copy(REPO / "flags" / "city_orders_instant_processing.json", flags)
    env = {
        "STRANGLER_DATA_DIR": str(data),
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": upstream,
        "STRANGLER_LEGACY_URL": f"http://127.0.0.1:{free_port()}",
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_SERVE_THREADS": "4",
        "STRANGLER_ORDER_ROUTE": order_route,
        "STRANGLER_LOG_FORMAT": "json",
    }
    args = [sys.executable, "-m", "strangler", "serve", "--intake-only"]
    if front:
        args += ["--front", "nginx"]
    url = f"http://127.0.0.1:{port}"
    with running(
        args, ready_url=f"{url}/_strangler/healthz", log_path=data / "sidecar.log", env=env
    ):
        yield url


if __name__ == "__main__":
    exit_on_sigterm()
    main()
