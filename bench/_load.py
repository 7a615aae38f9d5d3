"""Shared by bench/proxy.py and bench/intake.py: processes on loopback and load generation.

Load comes from wrk when it is installed (Debian package ``wrk``), else from a bounded
Python generator (threads, one keep-alive connection each). Every run is bounded in
time, and the Python generator also in requests.
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

READY_TIMEOUT_S = 30.0
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    """One load run: throughput, latency percentiles (ms), and failures."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def have(binary: str) -> bool:
    """True when ``binary`` is on PATH."""
    return shutil.which(binary) is not None


def wrk(url: str, connections: int, seconds: float, *, script: Path | None = None) -> Result:
    """Run wrk (keep-alive, one thread per 16 connections, at most 2) and parse its report."""
    threads = max(1, min(2, connections // 16 or 1))
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    args += ["--latency", "-T10s"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    total = int(_search(r"(\d+) requests in", out))
    duration = _duration_s(_search(r"requests in ([\d.]+\w+),", out))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Result(
        requests=total,
        seconds=duration,
        p50_ms=_latency_ms(_search(r"50%\s+([\d.]+\w+)", out)),
        p99_ms=_latency_ms(_search(r"99%\s+([\d.]+\w+)", out)),
        errors=errors,
    )


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return found.group(1)


def _latency_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def _duration_s(value: str) -> float:
    return _latency_ms(value) / 1000.0


RequestMaker = Callable[[int, int], tuple[str, str, bytes | None, dict[str, str]]]
"""(thread index, request index) -> method, path, body, headers."""


def python_load(
    url: str,
    connections: int,
    seconds: float,
    *,
    max_requests: int,
    make: RequestMaker | None = None,
) -> Result:
    """Bounded keep-alive load from ``connections`` threads; 2xx and 3xx count as success."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    per_thread = max(1, max_requests // connections)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def default(_thread: int, _n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        return "GET", parts.path or "/", None, {}

    maker = make or default

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        for n in range(per_thread):
            if time.monotonic() > deadline:
                break
            method, path, body, headers = maker(index, n)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status < 400
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                ok = False
            latencies[index].append(time.perf_counter() - started)
            errors[index] += 0 if ok else 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    samples = sorted(x for per in latencies for x in per)
    if not samples:
        return Result(0, elapsed, 0.0, 0.0, sum(errors))
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Result(
        requests=len(samples),
        seconds=elapsed,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        errors=sum(errors),
    )
