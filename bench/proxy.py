"""Benchmark the sidecar's proxy against its rivals, side by side, on loopback.

Targets, each answering GET /bench with the same small JSON body:

1. the upstream directly: nginx returning a fixed body (or, without nginx, a raw WSGI
   app under gunicorn);
2. nginx as a reverse proxy to it (the C anchor), in a process of its own as in front
   mode, with a keep-alive upstream pool;
3. a minimal Python pass-through (bench/_passthrough.py: raw WSGI + requests) under the
   same gunicorn settings as the sidecar;
4. the sidecar, ``strangler serve`` (the Python proxy);
5. ``sidecar-front``: the sidecar in front mode, ``strangler serve --front nginx`` (nginx
   in the data path, Python only on the order route), when nginx is installed.

Load: wrk at 1, 4 and 32 keep-alive connections (a bounded Python generator when wrk
is missing), a short warm-up first. The targets take turns, for three rounds, and the
median round is shown, so that a noisy neighbour on the machine skews every target
alike. Prints p50/p99 and rps per target and
the two targets: sidecar rps >= 0.9 x the pass-through, and added p50 <= 1.0 ms at one
connection over the direct upstream; and front mode: rps >= 0.8 x nginx alone at every
connection count, added p50 at one connection within 0.05 ms of nginx's. Results also
go to bench/results/proxy.json.

    .venv/bin/python bench/proxy.py [--seconds 3] [--rounds 3] [--workers 1] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _load import Result, have, python_load, wrk
from _nginx import nginx

from strangler.demo.processes import exit_on_sigterm, free_port, running
from strangler.settings import Settings
from strangler.sidecar.server import gunicorn_options

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "proxy.json"
PATH = "/bench"
WARM_UP_S = 1.0
MAX_PYTHON_REQUESTS = 50_000
RPS_TARGET = 0.9
ADDED_P50_TARGET_MS = 1.0
FRONT_RPS_TARGET = 0.8
FRONT_ADDED_P50_SLACK_MS = 0.05


def main() -> None:
    """Start every target, load each in turn, print the table and the verdicts."""
    args = _parse_args()
    settings = Settings(serve_workers=args.workers, serve_threads=args.threads)
    use_wrk = have("wrk") and not args.python_load
    load = "wrk" if use_wrk else "python load generator (wrk not installed)"
    with tempfile.TemporaryDirectory(prefix="strangler-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        upstream, nginx_proxy = stack.enter_context(_upstream_and_nginx(work))
        targets = {
            "upstream": upstream,
            "nginx": nginx_proxy,
            "passthrough": stack.enter_context(_passthrough(work, settings, upstream)),
            "sidecar": stack.enter_context(_sidecar(work, settings, upstream)),
            "sidecar-front": (
                stack.enter_context(_sidecar(work, settings, upstream, front=True))
                if nginx_proxy is not None
                else None
            ),
        }
        runs: dict[str, dict[int, list[Result]]] = {name: {} for name in targets}
        for round_ in range(args.rounds):
            for connections in args.connections:
                for name, base in targets.items():
                    if base is None:
                        continue
                    url = base + PATH
                    if round_ == 0:
                        _measure(url, connections, WARM_UP_S, use_wrk)
                    result = _measure(url, connections, args.seconds, use_wrk)
                    runs[name].setdefault(connections, []).append(result)
    results = {name: {c: _median(rs) for c, rs in by_c.items()} for name, by_c in runs.items()}
    spread = {
        name: {c: (min(r.rps for r in rs), max(r.rps for r in rs)) for c, rs in by_c.items()}
        for name, by_c in runs.items()
    }
    _report(results, spread, args, load, nginx_proxy is not None)


def _median(results: list[Result]) -> Result:
    """The run with the median throughput (its latencies with it)."""
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per run (default 3)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the median is shown"
    )
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 32])
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    return parser.parse_args()


def _measure(url: str, connections: int, seconds: float, use_wrk: bool) -> Result:
    if use_wrk:
        return wrk(url, connections, seconds)
    return python_load(url, connections, seconds, max_requests=MAX_PYTHON_REQUESTS)


@contextmanager
def _upstream_and_nginx(work: Path) -> Iterator[tuple[str, str | None]]:
    """The direct upstream and nginx in front of it (None without nginx)."""
    if not have("nginx"):
        print("nginx: skipped: nginx not installed (apt-get install -y nginx)")
        with _gunicorn(work, "_static_upstream:app", Settings(serve_threads=16), {}) as url:
            yield url, None
        return
    up, proxy = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up}"
    # Two nginx processes, as in front mode: one nginx worker serving both ends would
    # skip the hand-off between processes that every real proxy pays.
    serve = f"""
  server {{
    listen 127.0.0.1:{up};
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}"""
    forward = f"""
  upstream backend {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"""
    with (
        nginx(work / "nginx-upstream", serve, ready_url=f"{upstream}{PATH}"),
        nginx(work / "nginx-proxy", forward, ready_url=f"http://127.0.0.1:{proxy}{PATH}"),
    ):
        yield upstream, f"http://127.0.0.1:{proxy}"


@contextmanager
def _gunicorn(work: Path, app: str, settings: Settings, env: dict[str, str]) -> Iterator[str]:
    """``app`` (a module in bench/) under the sidecar's gunicorn settings; yields its URL."""
    port = free_port()
    options = gunicorn_options(settings.replace(serve_port=port))
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        options["bind"],
        "--workers",
        str(options["workers"]),
        "--threads",
        str(options["threads"]),
        "--worker-class",
        options["worker_class"],
        "--keep-alive",
        str(options["keepalive"]),
        "--timeout",
        str(options["timeout"]),
        "--graceful-timeout",
        str(options["graceful_timeout"]),
        "--log-level",
        options["loglevel"],
        "--chdir",
        str(BENCH),
        app,
    ]
    url = f"http://127.0.0.1:{port}"
    with running(args, ready_url=f"{url}{PATH}", log_path=work / f"{port}.log", env=env):
        yield url


@contextmanager
def _passthrough(work: Path, settings: Settings, upstream: str) -> Iterator[str]:
    env = {"BENCH_UPSTREAM_URL": upstream, "BENCH_THREADS": str(settings.serve_threads)}
    with _gunicorn(work, "_passthrough:app", settings, env) as url:
        yield url


@contextmanager
def _sidecar(
    work: Path, settings: Settings, upstream: str, *, front: bool = False
) -> Iterator[str]:
    port = free_port()
    data = work / ("sidecar-front" if front else "sidecar")
    data.mkdir()
    flags = data / "flags.json"
    shutil.copy(REPO / "flags" / "city_orders_instant_processing.json", flags)
    env = {
        "STRANGLER_DATA_DIR": str(data),
        "STRANGLER_FLAGS_FILE": str(flags),
        "STRANGLER_UPSTREAM_URL": upstream,
        "STRANGLER_LEGACY_URL": f"http://127.0.0.1:{free_port()}",
        "STRANGLER_SERVE_PORT": str(port),
        "STRANGLER_SERVE_WORKERS": str(settings.serve_workers),
        "STRANGLER_SERVE_THREADS": str(settings.serve_threads),
        "STRANGLER_LOG_FORMAT": "json",
    }
    args = [sys.executable, "-m", "strangler", "serve", *(["--front", "nginx"] if front else [])]
    url = f"http://127.0.0.1:{port}"
    with running(
        args, ready_url=f"{url}/_strangler/healthz", log_path=data / "sidecar.log", env=env
    ):
        yield url


def _report(
    results: dict[str, dict[int, Result]],
    spread: dict[str, dict[int, tuple[float, float]]],
    args: argparse.Namespace,
    load: str,
    nginx: bool,
) -> None:
    print(
        f"proxy benchmark on 127.0.0.1: GET {PATH}, median of {args.rounds} rounds of "
        f"{args.seconds:g}s, load from {load}; "
        f"gunicorn gthread, {args.workers} worker(s) x {args.threads} threads"
    )
    print(
        f"{'target':<14}{'conns':>6}{'rps':>10}{'rps min-max':>16}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}"
    )
    for connections in args.connections:
        for name, runs in results.items():
            if connections in runs:
                r = runs[connections]
                low, high = spread[name][connections]
                print(
                    f"{name:<14}{connections:>6}{r.rps:>10.0f}{f'{low:.0f}-{high:.0f}':>16}"
                    f"{r.p50_ms:>9.3f}"
                    f"{r.p99_ms:>9.3f}{r.errors:>8}"
                )
    if not nginx:
        print("nginx: skipped: nginx not installed")
    verdicts = _verdicts(results, args.connections)
    for line in verdicts["lines"]:
        print(line)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "load": load,
                "seconds": args.seconds,
                "rounds": args.rounds,
                "workers": args.workers,
                "threads": args.threads,
                "runs": {
                    name: {
                        str(c): {
                            "rps": round(r.rps),
                            "rps_min": round(spread[name][c][0]),
                            "rps_max": round(spread[name][c][1]),
                            "p50_ms": round(r.p50_ms, 3),
                            "p99_ms": round(r.p99_ms, 3),
                            "errors": r.errors,
                        }
                        for c, r in runs.items()
                    }
                    for name, runs in results.items()
                },
                "verdicts": verdicts["values"],
            },
            indent=2,
        )
        + "\n"
    )


def _verdicts(results: dict[str, dict[int, Result]], connections: list[int]) -> dict[str, list]:
    lines, values = [], []
    sidecar, passthrough = results["sidecar"], results["passthrough"]
    for c in connections:
        ratio = sidecar[c].rps / passthrough[c].rps if passthrough[c].rps else 0.0
        verdict = "met" if ratio >= RPS_TARGET else "MISSED"
        lines.append(
            f"sidecar/pass-through rps at {c:>2} conns: {ratio:.2f} (target >= 0.9, {verdict})"
        )
        values.append({"connections": c, "rps_ratio": round(ratio, 3), "met": ratio >= RPS_TARGET})
    if 1 in connections:
        direct = results["upstream"][1].p50_ms
        for name in ("nginx", "passthrough", "sidecar", "sidecar-front"):
            if 1 in results[name]:
                added = results[name][1].p50_ms - direct
                note = ""
                if name == "sidecar":
                    met = added <= ADDED_P50_TARGET_MS
                    note = f" (target <= 1.0 ms, {'met' if met else 'MISSED'})"
                    values.append({"added_p50_ms_at_1": round(added, 3), "met": met})
                lines.append(f"added p50 at 1 conn, {name}: {added:.3f} ms{note}")
    if results.get("sidecar-front") and results.get("nginx"):
        _front_verdicts(results, connections, lines, values)
    return {"lines": lines, "values": values}


def _front_verdicts(
    results: dict[str, dict[int, Result]],
    connections: list[int],
    lines: list[str],
    values: list[dict[str, object]],
) -> None:
    front, nginx = results["sidecar-front"], results["nginx"]
    for c in connections:
        ratio = front[c].rps / nginx[c].rps if nginx[c].rps else 0.0
        met = ratio >= FRONT_RPS_TARGET
        lines.append(
            f"sidecar-front/nginx rps at {c:>2} conns: {ratio:.2f} "
            f"(target >= {FRONT_RPS_TARGET}, {'met' if met else 'MISSED'})"
        )
        values.append({"front_connections": c, "front_rps_ratio": round(ratio, 3), "met": met})
    if 1 in connections:
        extra = front[1].p50_ms - nginx[1].p50_ms
        met = extra <= FRONT_ADDED_P50_SLACK_MS
        lines.append(
            f"sidecar-front p50 over nginx's at 1 conn: {extra:.3f} ms "
            f"(target <= {FRONT_ADDED_P50_SLACK_MS} ms, {'met' if met else 'MISSED'})"
        )
        values.append({"front_extra_p50_ms_at_1": round(extra, 3), "met": met})


if __name__ == "__main__":
    exit_on_sigterm()
    main()
