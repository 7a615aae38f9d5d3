"""Reports never block the intake: a report loop over a big SQLite ledger while orders arrive.

One real ``strangler serve`` (routing in its child process, the default) in front of the
legacy simulator, on a SQLite ledger holding :data:`HISTORY` ended orders (bulk SQL,
:mod:`strangler.ledger.synthetic`), so that each report takes a second or more. While
reports run back to back (each for a new ``until``, so none comes from the cache),
orders arrive through the proxy at :data:`RATE` a second, readiness is asked every
quarter second, and an outside writer takes SQLite's write lock over and over. The same
scenario runs with ``GET /_strangler/gate`` polled back to back instead (each with another
``min_orders``, so none from the cache): its verdict is the step window's report, computed
by the same child.

What it shows is the mechanism, not a timing (performance is measured by
bench/report_load.py): every order is answered 201 and durable, nothing is counted in
``strangler_intake_missed_total``, the log has no lock error, readiness answers 200
every time, and the outside writer always gets the write lock within
:data:`OUTSIDE_BUSY_S`, far less than one report: no report holds the lock. The reports
were computed by one child process of the sidecar (not a thread of the intake's process)
running nice +10 below the sidecar: the intake wins a shared core. The
intake's latency percentiles and the report times are printed for docs/RELIABILITY.md
(run with ``-s``).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from strangler.ledger import ledger_from_url
from strangler.ledger.synthetic import fill_history
from strangler.sidecar.report_child import NICENESS
from tests.helpers import wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, new_order, start_legacy_sim
from tests.integration.sidecar_support import Sidecar, running_sidecar

pytestmark = pytest.mark.slow

HISTORY = 200_000
RATE = 200.0
SECONDS = 10.0
SENDERS = 16
OUTSIDE_BUSY_S = 1.0
TIMEOUT_S = 30.0
# A report runs at a lower CPU priority: on a busy machine it may take far longer than
# the same report alone, and only its completion is asserted, never its time.
REPORT_TIMEOUT_S = 180.0
# What a lock error looks like in the sidecar's log (SQLite's, or the ledger's own).
LOCK_ERRORS = ("database is locked", "held the ledger", "intake_missed")


@dataclass
class Loop:
    """A background loop: it calls ``once`` until stopped, keeping what each call returned."""

    once: Callable[[], object]
    pause_s: float = 0.0
    results: list[object] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.results.append(self.once())
            self.stopped.wait(self.pause_s)

    def stop(self) -> list[object]:
        """Stop after the call in progress; the results."""
        self.stopped.set()
        self.thread.join(timeout=REPORT_TIMEOUT_S + TIMEOUT_S)
        return self.results


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    """The legacy simulator as order service and legacy app; its batch jobs run every 5 s."""
    with start_legacy_sim(tmp_path, SimOptions(job_interval=5.0)) as running:
        yield running


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """A SQLite ledger holding HISTORY ended orders of the past week."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = ledger_from_url(url)
    try:
        fill_history(ledger.engine, HISTORY, until=datetime.now(UTC))
    finally:
        ledger.close()
    return url


def report(sidecar: Sidecar) -> tuple[int, float]:
    """One report up to now (a new query each time, never from the cache): status, seconds."""
    started = time.perf_counter()
    until = datetime.now(UTC).isoformat()
    answer = requests.get(
        f"{sidecar.url}/_strangler/report",
        params={"until": until, "examples": "0"},
        timeout=REPORT_TIMEOUT_S,
    )
    return answer.status_code, time.perf_counter() - started


_GATE_QUERIES = itertools.count(1)


def gate(sidecar: Sidecar) -> tuple[int, float]:
    """One gate verdict, as a CD controller polls it (another min_orders each time, so never
    from the cache): status, seconds."""
    started = time.perf_counter()
    answer = requests.get(
        f"{sidecar.url}/_strangler/gate",
        params={"min_orders": str(next(_GATE_QUERIES))},
        timeout=REPORT_TIMEOUT_S,
    )
    return answer.status_code, time.perf_counter() - started


# What each read answers when it worked (the gate's status says its outcome).
READS: dict[str, tuple[Callable[[Sidecar], tuple[int, float]], frozenset[int]]] = {
    "report": (report, frozenset({200})),
    "gate": (gate, frozenset({200, 409, 412, 423})),
}


def readyz(sidecar: Sidecar) -> tuple[int, str]:
    """Readiness: status and the ledger check's verdict."""
    answer = requests.get(f"{sidecar.url}/_strangler/readyz", timeout=TIMEOUT_S)
    return answer.status_code, answer.json()["checks"]["ledger"]


def outside_write(path: Path) -> str | None:
    """Take and give back SQLite's write lock from another connection; None, or the error."""
    connection = sqlite3.connect(path, timeout=OUTSIDE_BUSY_S, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        connection.close()
    return None


def send_orders(sidecar: Sidecar) -> list[tuple[int, float]]:
    """POST /orders through the sidecar at RATE a second for SECONDS: (status, seconds) each."""
    local = threading.local()
    count = int(RATE * SECONDS)
    start = time.perf_counter() + 0.1

    def send(n: int) -> tuple[int, float]:
        delay = start + n / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # an open-loop schedule: order n leaves at its own time
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        sent = time.perf_counter()
        answer = session.post(
            f"{sidecar.url}/orders", json=new_order(f"load-{n}"), timeout=TIMEOUT_S
        )
        return answer.status_code, time.perf_counter() - sent

    with ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(send, range(count)))


def intake_metrics(sidecar: Sidecar) -> dict[tuple[str, str], float]:
    """Intake counters from /metrics: (sample name, source/result labels) -> value."""
    text = requests.get(f"{sidecar.url}/metrics", timeout=TIMEOUT_S).text
    return {
        (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("strangler_intake")
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def report_processes(log: str) -> list[int]:
    """The pids of the report processes the sidecar's log says were started."""
    events = (json.loads(line) for line in log.splitlines() if "report_process_started" in line)
    return [event["pid"] for event in events if event.get("event") == "report_process_started"]


def nice_value(pid: int) -> int:
    """The nice value of a running process."""
    return os.getpriority(os.PRIO_PROCESS, pid)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


@pytest.mark.parametrize("read", sorted(READS))
def test_orders_flow_while_reports_run_back_to_back(
    sim: RunningSim, ledger_url: str, tmp_path: Path, read: str
) -> None:
    """Under a report loop (or the gate polled back to back: its verdict is the step
    window's report), every order is taken in, none missed, no lock error, always ready."""
    ledger_file = Path(ledger_url.removeprefix("sqlite:///"))
    ask, worked = READS[read]
    with running_sidecar(
        tmp_path, upstream_url=sim.url, legacy_url=sim.url, ledger_url=ledger_url
    ) as sidecar:
        reports = Loop(lambda: ask(sidecar))
        ready = Loop(lambda: readyz(sidecar), pause_s=0.25)
        outside = Loop(lambda: outside_write(ledger_file), pause_s=0.2)
        for loop in (reports, ready, outside):
            loop.thread.start()
        wait_until(lambda: len(reports.results) >= 1, REPORT_TIMEOUT_S, "the first report")
        orders = send_orders(sidecar)
        report_results = reports.stop()
        ready_results, outside_results = ready.stop(), outside.stop()
        metrics = intake_metrics(sidecar)
        log = sidecar.log.read_text(errors="replace")
        started = report_processes(log)
        niceness = {pid: nice_value(pid) for pid in started}
    stored = ledger_from_url(ledger_url)
    try:
        by_source = stored.counts().by_source
    finally:
        stored.close()

    statuses = [status for status, _ in orders]
    assert {status: statuses.count(status) for status in set(statuses)} == {201: len(orders)}
    assert by_source.get("proxy") == len(orders)
    assert metrics.get(("strangler_intake_notifications_total", "result=new,source=proxy")) == len(
        orders
    )
    missed = {key: value for key, value in metrics.items() if "missed" in key[0]}
    assert sum(missed.values()) == 0, missed
    assert [line for line in log.splitlines() if any(e in line for e in LOCK_ERRORS)] == []
    assert {status for status, _ in report_results} <= worked  # type: ignore[misc]
    assert len(report_results) >= 2
    assert set(ready_results) == {(200, "ok")}
    assert [error for error in outside_results if error is not None] == []
    # One child computed every report (and gate verdict: the sidecar started none for
    # the gate before), NICENESS levels below the sidecar (as this process).
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    assert (len(started), list(niceness.values())) == (1, [expected])
    seconds = [s for _, s in orders]
    report_s = [s for _, s in report_results]  # type: ignore[misc]
    print(
        json.dumps(
            {
                "scenario": f"{read}_under_load",
                "history_orders": HISTORY,
                "orders": len(orders),
                "intake_p50_ms": round(statistics.median(seconds) * 1000, 1),
                "intake_p99_ms": round(percentile(seconds, 99) * 1000, 1),
                "reports": len(report_s),
                "report_median_s": round(statistics.median(report_s), 2),
                "readyz_answers": len(ready_results),
                "outside_writes": len(outside_results),
            }
        )
    )
