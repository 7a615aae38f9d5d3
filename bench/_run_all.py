"""``make bench``: run every bench in bench/ within a bounded time; write docs/BENCHMARKS.md.

Each bench runs as its own process with settings that keep it short, under a time cap
(killed when over, and the page says so). The page gets the machine, the date and the
command, then per bench: what it measures against (its anchor), how it was run, and
its own printed tables (medians over rounds, min-max where the bench keeps it, and the
ratios against its anchor), verbatim. Benches are not tests and do not run in CI.

    .venv/bin/python bench/_run_all.py [--only proxy routing] [--output docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUTPUT = REPO / "docs" / "BENCHMARKS.md"
TOTAL_CAP_S = 3600.0
STOP_GRACE_S = 30.0  # a bench over its cap stops its sidecar and simulator in this time


@dataclass(frozen=True)
class Bench:
    """One bench: its script, the arguments that bound it, its time cap and its anchor."""

    name: str
    args: tuple[str, ...]
    cap_s: float
    anchor: str


BENCHES = (
    Bench(
        "proxy",
        ("--seconds", "3", "--rounds", "3"),
        600,
        "nginx proxying alone (sidecar-front), the minimal Python pass-through (sidecar)",
    ),
    Bench(
        "order_route",
        ("--seconds", "3", "--rounds", "3"),
        600,
        "the order service alone and a minimal pass-through",
    ),
    Bench(
        "intake",
        ("--seconds", "4", "--workers", "2", "--connections", "1", "4", "16"),
        600,
        "the ledger alone (record_received with no HTTP)",
    ),
    Bench(
        "routing",
        ("--orders", "1000", "--rounds", "3", "--profile"),
        900,
        "the zero-latency legacy fake (the strangler's own cost)",
    ),
    Bench(
        "head_of_line",
        (
            "--layout",
            "serve",
            "--good",
            "200",
            "--rounds",
            "2",
            "--failing",
            "0",
            "0",
            "8",
            "64",
            "--apart",
            "--apart-nice",
            "10",
            "--twin",
        ),
        900,
        "the same run without failing orders in flight; controls: the failing orders in a "
        "sidecar of their own at nice 10 (apart: the most moving them out of the timed "
        "sidecar could win), the same legacy calls from ordinary orders (twin)",
    ),
    Bench(
        "latency",
        ("--orders", "200", "--rate", "20"),
        900,
        "graphile-worker: a PostgreSQL job queue starting a job ~2 ms after it is queued "
        "(LISTEN/NOTIFY); targets routed p50/p99 3/10 ms, terminal 15/40 ms",
    ),
    Bench("flags", ("--orders", "10000", "--repeats", "3"), 600, "the bare Unleash SDK call"),
    Bench("legacy", ("--calls", "300", "--orders", "2000"), 600, "none (absolute figures)"),
    Bench("executor", ("--quick",), 600, "see the bench's own table"),
    Bench("lambda_imports", (), 600, "a bare interpreter"),
    Bench("report", ("--orders", "100000", "--rounds", "3"), 900, "see the bench's own table"),
    Bench(
        "scrape_load",
        ("--orders", "1000000", "--rounds", "2"),
        900,
        "the intake with no scrape (Prometheus' 15 s interval against none)",
    ),
    Bench(
        "report_load",
        ("--orders", "1000000", "--rounds", "2", "--seconds", "10"),
        1500,  # seven set-ups since the gate loop and the CLI rows (~9 min on a quiet machine)
        "the intake with no report, and the report as it was (holding the write lock)",
    ),
)


@dataclass(frozen=True)
class Outcome:
    """What one bench printed, how it ended and how long it took."""

    bench: Bench
    output: str
    status: str
    seconds: float


def main() -> None:
    """Install the load tools where possible, run each bench, write the page."""
    args = _parse_args()
    tools = _ensure_tools()
    outcomes = []
    deadline = time.monotonic() + TOTAL_CAP_S
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        if not (BENCH / f"{bench.name}.py").exists():
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            outcomes.append(Outcome(bench, "", "not run: the total time cap was reached", 0.0))
            continue
        print(f"make bench: {bench.name} ...", flush=True)
        outcome = _run(bench, min(bench.cap_s, left))
        print(f"make bench: {bench.name}: {outcome.status} in {outcome.seconds:.0f}s", flush=True)
        outcomes.append(outcome)
    args.output.write_text(_page(outcomes, tools))
    print(f"make bench: wrote {args.output}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="run only these benches")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args()


def _ensure_tools() -> list[str]:
    """Install wrk and nginx when missing (apt, as `make test` does); say what is used."""
    missing = [tool for tool in ("wrk", "nginx") if not _which(tool)]
    if missing:
        script = REPO / "scripts" / "ensure-system-packages.sh"
        done = subprocess.run(["bash", str(script)], check=False, timeout=900)
        if done.returncode != 0:
            print(f"make bench: could not install {', '.join(missing)} (see above)")
    return [
        f"{tool}: {_which(tool)}" if _which(tool) else f"{tool}: missing, {fallback}"
        for tool, fallback in (
            ("wrk", "the benches fell back to their bounded Python load generator"),
            ("nginx", "the nginx anchor and sidecar-front rows are skipped"),
        )
    ]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin")


def _run(bench: Bench, cap_s: float) -> Outcome:
    command = [sys.executable, str(BENCH / f"{bench.name}.py"), *bench.args]
    started = time.monotonic()
    # A session of its own, so a bench over its cap is stopped with every process it
    # started (a sidecar, a simulator), not only the bench's own.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        stdout, _ = _stop_group(process)
        return Outcome(bench, stdout, f"stopped at its {cap_s:.0f}s cap", cap_s)
    finally:
        _kill_group(process.pid)  # whatever the bench left behind
    seconds = time.monotonic() - started
    if process.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-15:])
        return Outcome(bench, stdout + tail, f"failed (exit {process.returncode})", seconds)
    return Outcome(bench, stdout, "ok", seconds)


def _stop_group(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the bench's process group, SIGKILL it after a grace; its output so far."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.communicate(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        return process.communicate()


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{os.cpu_count()} CPUs ({model}), {int(memory) // 1024} MiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"load average when the page was written: {load}"
    )


def _page(outcomes: list[Outcome], tools: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/_run_all.py); do not edit by hand. Every figure",
        "below comes from that one run, the benches one after the other. The machine may",
        "have been shared: the load average is printed by the benches that can be skewed.",
        "",
        f"- Date: {now}",
        f"- Machine: {_machine()}",
        "- Command: `make bench`",
        *(f"- {tool}" for tool in tools),
        "",
    ]
    for outcome in outcomes:
        bench = outcome.bench
        command = " ".join(["python", f"bench/{bench.name}.py", *bench.args])
        lines += [
            f"## {bench.name}",
            "",
            f"- Command: `{command}`",
            f"- Anchor: {bench.anchor}",
            f"- Result: {outcome.status}, {outcome.seconds:.0f} s",
            "",
            "```",
            *_printed(outcome.output),
            "```",
            "",
        ]
    return "\n".join(lines)


def _printed(output: str) -> list[str]:
    """The bench's output without log lines (JSON or console logs of child processes)."""
    keep = [line.rstrip() for line in output.splitlines() if not line.startswith("{")]
    return keep or ["(no output)"]


if __name__ == "__main__":
    main()
