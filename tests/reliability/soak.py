"""Reliability scenario 6 (``make soak``, not in CI): a steady order rate for a long run.

Starts the legacy simulator and ``strangler serve`` (its supervisor and every child) as
real processes, sends orders through the proxy (``POST /orders``) at a steady rate for
``--minutes`` (default 10), and every ``--every`` seconds samples the resident memory
(RSS, from /proc: Linux only) of each process and the ledger's size (rows per table and
the SQLite files). At the end it waits for the backlog to drain and prints a table of
the samples, then a least-squares slope of each process's RSS over the second half of
the run: memory that grows without bound shows as a steady positive slope. Exit status
1 when an order was lost (created upstream, absent from the ledger or not terminal) or
a slope exceeds ``--max-slope`` MB/min.

    python -m tests.reliability.soak --minutes 10 --rate 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from strangler.demo.processes import free_port, running
from tests.helpers import REPO_ROOT, strangler_cmd
from tests.integration.routing import write_flags

_TABLES = ("orders", "step_results", "transitions", "comparisons")
_TERMINAL = ("fulfilled", "rejected_fraud", "payment_declined", "failed")


@dataclass
class Sample:
    """One sample: seconds since the start, RSS per process (MB), ledger figures."""

    at_s: float
    sent: int
    rss_mb: dict[str, float]
    rows: dict[str, int]
    backlog: int
    ledger_mb: float


@dataclass
class Load:
    """Sends orders through the proxy at a steady rate from one pacing thread and a pool."""

    url: str
    rate: float
    sent: int = 0
    failed: int = 0
    created: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, seconds: float) -> None:
        """Send ``rate`` orders a second for ``seconds``; each on a short-lived thread."""
        session = requests.Session()
        start = time.monotonic()
        n = 0
        while not self._stop.is_set() and (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * self.rate) + 1
            while n < due:
                threading.Thread(target=self._one, args=(session, n), daemon=True).start()
                n += 1
            self._stop.wait(0.01)

    def stop(self) -> None:
        """Stop sending (orders in flight finish)."""
        self._stop.set()

    def _one(self, session: requests.Session, n: int) -> None:
        order = {
            "order_id": f"soak-{uuid.uuid4().hex[:12]}",
            "user_guid": f"u-{n % 5000}",
            "unit_id": f"unit-{n % 13}",
            "amount_cents": 250_000 if n % 11 == 3 else 2500,
            "quantity": 1,
            "payment_token": "decline_card" if n % 13 == 5 else "tok_visa_4242",
        }
        try:
            answer = session.post(f"{self.url}/orders", json=order, timeout=10)
            created = answer.status_code == 201
        except requests.RequestException:
            created = False
        with self._lock:
            self.sent += 1
            if created:
                self.created.append(order["order_id"])
            else:
                self.failed += 1


def process_tree(pid: int, label: str) -> Iterator[tuple[int, str]]:
    """``pid`` and all its descendants (from /proc), labelled by their place in the tree.

    The sidecar's children are forks with the same command line, so ``serve.2.1`` (the
    first child of its second child) names a process better than its command does.
    """
    yield pid, label
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for index, child in enumerate(children, 1):
        yield from process_tree(int(child), f"{label}.{index}")


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def ledger_figures(engine: sa.Engine, db: Path) -> tuple[dict[str, int], int, float]:
    """Rows per table, the backlog (orders not terminal) and the SQLite files' size (MB)."""
    with engine.connect() as conn:
        rows = {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608 (fixed names)
            for table in _TABLES
        }
        backlog = int(
            conn.execute(
                sa.text("SELECT count(*) FROM orders WHERE terminal_at IS NULL")
            ).scalar_one()
        )
    size = sum(path.stat().st_size for path in db.parent.glob(db.name + "*"))
    return rows, backlog, size / 1e6


def slope_mb_per_min(samples: list[Sample], name: str) -> float:
    """Least-squares slope of one process's RSS over the second half of the run."""
    half = samples[len(samples) // 2 :]
    points = [(s.at_s / 60, s.rss_mb[name]) for s in half if name in s.rss_mb]
    if len(points) < 3:
        return 0.0
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope


def print_table(samples: list[Sample], names: list[str]) -> None:
    """The samples as a table: time, orders sent, RSS per process, ledger rows and size."""
    head = ["t (s)", "sent", *[f"{n} MB" for n in names], "orders", "steps", "backlog", "db MB"]
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for s in samples:
        cells = [f"{s.at_s:.0f}", str(s.sent)]
        cells += [f"{s.rss_mb[n]:.1f}" if n in s.rss_mb else "-" for n in names]
        cells += [str(s.rows["orders"]), str(s.rows["step_results"]), str(s.backlog)]
        cells.append(f"{s.ledger_mb:.1f}")
        print(" | ".join(cells))


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when nothing was lost and memory stayed bounded."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--max-slope", type=float, default=1.0, help="MB/min allowed")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.every <= 0:
        parser.error("--minutes, --rate and --every must be positive")
    with tempfile.TemporaryDirectory(prefix="strangler-soak-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        sim_port, port = free_port(), free_port()
        sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
        sim = stack.enter_context(
            running(
                strangler_cmd(
                    "legacy-sim", "--port", str(sim_port), "--db", str(work / "sim.sqlite3"),
                    "--job-interval", "2", "--log-format", "json",
                ),
                ready_url=f"{sim_url}/healthz",
                log_path=work / "sim.log",
                cwd=REPO_ROOT,
            )
        )  # fmt: skip
        env = {
            "STRANGLER_DATA_DIR": str(work / "data"),
            "STRANGLER_FLAGS_FILE": str(write_flags(work / "flags.json", rollout=50, shadow=500)),
            "STRANGLER_UPSTREAM_URL": sim_url,
            "STRANGLER_LEGACY_URL": sim_url,
            "STRANGLER_SERVE_PORT": str(port),
            "STRANGLER_LOG_FORMAT": "json",
        }
        sidecar = stack.enter_context(
            running(
                strangler_cmd("serve"),
                ready_url=f"{url}/_strangler/healthz",
                log_path=work / "sidecar.log",
                env=env,
                cwd=REPO_ROOT,
            )
        )
        db = work / "data" / "ledger.sqlite3"
        engine = sa.create_engine(f"sqlite:///{db}")
        stack.callback(engine.dispose)
        load = Load(url, args.rate)
        seconds = args.minutes * 60
        sender = threading.Thread(target=load.run, args=(seconds,), daemon=True)
        started = time.monotonic()
        sender.start()
        samples: list[Sample] = []
        names: dict[int, str] = {}

        def sample() -> Sample:
            pids = [*process_tree(sidecar.pid, "serve"), (sim.pid, "legacy-sim")]
            memory = {}
            for pid, label in pids:
                value = rss_mb(pid)
                if value is not None:
                    memory[names.setdefault(pid, f"{label}:{pid}")] = value
            rows, backlog, size = ledger_figures(engine, db)
            return Sample(time.monotonic() - started, load.sent, memory, rows, backlog, size)

        while sender.is_alive():
            sender.join(args.every)
            samples.append(sample())
        deadline = time.monotonic() + args.drain_timeout
        while samples[-1].backlog and time.monotonic() < deadline:
            time.sleep(min(args.every, 5.0))
            samples.append(sample())
        names_seen = sorted({n for s in samples for n in s.rss_mb})
        print_table(samples, names_seen)
        slopes = {n: slope_mb_per_min(samples, n) for n in names_seen}
        lost = lost_orders(engine, load.created)
        print()
        last = samples[-1]
        per_order_kb = 1000 * last.ledger_mb / max(1, last.rows["orders"])
        print(f"orders sent {load.sent}, created upstream {len(load.created)}, "
              f"refused or failed {load.failed}, lost {len(lost)}; ledger "
              f"{last.ledger_mb:.1f} MB for {last.rows['orders']} orders "
              f"({per_order_kb:.1f} kB/order: at {args.rate:g}/s, 30 days of retention "
              f"hold about {per_order_kb * args.rate * 86400 * 30 / 1e6:.0f} GB)")  # fmt: skip
        print(json.dumps({"rss_slope_mb_per_min_second_half": slopes}, indent=1))
        growing = {n: v for n, v in slopes.items() if v > args.max_slope}
        if lost:
            print(f"LOST: {lost[:20]}", file=sys.stderr)
        if growing:
            print(f"RSS GROWING (> {args.max_slope} MB/min): {growing}", file=sys.stderr)
        return 1 if lost or growing else 0


def lost_orders(engine: sa.Engine, created: list[str]) -> list[str]:
    """Orders created upstream that the ledger lacks or has not ended."""
    with engine.connect() as conn:
        ended = set(
            conn.execute(
                sa.text("SELECT order_id FROM orders WHERE status IN :terminal").bindparams(
                    sa.bindparam("terminal", expanding=True)
                ),
                {"terminal": list(_TERMINAL)},
            ).scalars()
        )
    return [order_id for order_id in created if order_id not in ended]


if __name__ == "__main__":
    sys.exit(main())
