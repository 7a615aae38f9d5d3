"""Benchmark: routing decisions per second, decide() against the bare Unleash SDK call.

Every row evaluates the same orders on the same flag (embedded mode, rollout 50%,
instant=70/shadow=30), one thread, and includes building the Unleash context from the
order unless the row says otherwise. Each figure is the median of ``--repeats`` runs.

    .venv/bin/python bench/flags.py [--orders 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from strangler.flags import FLAG_NAME, EmbeddedFlagSource, order_context  # noqa: E402
from strangler.logs import configure_logging  # noqa: E402
from strangler.orders import OrderNotification  # noqa: E402
from strangler.rollout.controller import FileRolloutController  # noqa: E402

TARGET_PER_S = 20_000


def _orders(count: int) -> list[OrderNotification]:
    cities = ("nyc", "sf", "chicago", None)
    return [
        OrderNotification.from_dict(
            {
                "order_id": f"bench-{i}",
                "user_guid": f"user-{i * 7919 % 1_000_003}",
                "unit_id": f"unit-{i % 97}",
                **({"city": city} if (city := cities[i % len(cities)]) else {}),
            }
        )
        for i in range(count)
    ]


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _flag_file(folder: Path) -> Path:
    flags = folder / "flag.json"
    shutil.copyfile(REPO_ROOT / "flags" / f"{FLAG_NAME}.json", flags)
    controller = FileRolloutController(flags, folder / "audit.jsonl")
    controller.set_variants({"instant": 70, "shadow": 30}, actor="bench", reason="bench")
    controller.set_percentage(50, actor="bench", reason="bench")
    return flags


def _rows(
    flags: Path, orders: Sequence[OrderNotification], stack: contextlib.ExitStack
) -> list[tuple[str, Callable[[], Any]]]:
    fast = stack.enter_context(EmbeddedFlagSource(flags))
    through_sdk = stack.enter_context(EmbeddedFlagSource(flags, fast_path=False))
    client = fast.client
    assert client is not None
    contexts = [order_context(order) for order in orders]
    return [
        ("decide() (engine, strangler)", lambda: [fast.decide(o) for o in orders]),
        ("decide() via get_variant", lambda: [through_sdk.decide(o) for o in orders]),
        (
            "bare SDK get_variant + context",
            lambda: [client.get_variant(FLAG_NAME, order_context(o)) for o in orders],
        ),
        (
            "bare SDK get_variant, prebuilt ctx",
            lambda: [client.get_variant(FLAG_NAME, c) for c in contexts],
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    configure_logging("console", level=logging.WARNING)
    orders = _orders(args.orders)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strangler-bench-")))
        rows = _rows(_flag_file(folder), orders, stack)
        results = [(name, _median_seconds(run, args.repeats)) for name, run in rows]
    base = results[0][1]
    print(
        f"flag decisions: {args.orders:,} orders x {args.repeats} runs (median), one thread, "
        f"embedded mode"
    )
    print(f"{'path':<36} {'us/decision':>12} {'decisions/s':>12} {'vs decide()':>12}")
    for name, seconds in results:
        per_decision = seconds / args.orders
        print(
            f"{name:<36} {per_decision * 1e6:>12.1f} {1 / per_decision:>12,.0f} "
            f"{seconds / base:>11.1f}x"
        )
    rate = args.orders / base
    verdict = "meets" if rate >= TARGET_PER_S else "misses"
    print(f"decide() {verdict} the target of {TARGET_PER_S:,} decisions/s ({rate:,.0f}/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
