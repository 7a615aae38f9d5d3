"""Where the sidecar computes reports and the gate's verdict: a child process at nice +10.

A report over a big ledger is seconds of CPU (SQLite's scans and sorts). Computed on a
thread of the intake's process it competes with the intake for the cores and for the
GIL: a lowered thread priority cannot help with the GIL, since a starved report thread
holding it stalls every intake thread behind it. So :class:`ReportProcess` hands each
report to one long-lived child (:mod:`strangler.sidecar.report_child`) running nice
+:data:`NICENESS`: the intake comes first on a shared core, the report shares no GIL with
the intake, and reads in its own read-only snapshot. The gate endpoint's verdict (its
window's report) is computed there too (:meth:`ReportProcess.gate`). One at a time; a
child that dies or overruns :data:`REPORT_TIMEOUT_S` is stopped and the next report starts
a new one.

:class:`ThreadReports` is the in-process fallback for a ledger no other process can open
(SQLite in memory) or one handed to ``create_app`` by a test: a thread of its own at
nice +:data:`NICENESS`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import IO, Any

import structlog

from strangler.exceptions import LedgerError
from strangler.report.render_json import report_to_dict
from strangler.sidecar.exceptions import ReportUnavailable
from strangler.sidecar.gate_answer import FixedRollout, GateQuery, gate_answer, state_from_json
from strangler.sidecar.report_child import ERROR, GATE, NICENESS, REPORT
from strangler.sidecar.seams import SidecarRuntime

__all__ = [
    "NICENESS",
    "REPORT_TIMEOUT_S",
    "ReportProcess",
    "ThreadReports",
    "lower_thread_priority",
]

_log = structlog.get_logger()
REPORT_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 5.0


class ReportProcess:
    """Reports over the ledger at ``ledger_url``, computed by a child process (see module).

    Thread-safe: callers queue for the one child. Raises ValueError for a bad window,
    LedgerError when the ledger cannot be read, ReportUnavailable when the child fails,
    dies or overruns ``timeout_s``.
    """

    def __init__(
        self, ledger_url: str, *, log_format: str = "json", timeout_s: float = REPORT_TIMEOUT_S
    ) -> None:
        self._ledger_url = ledger_url
        self._command = [sys.executable, "-m", "strangler.sidecar.report_child"]
        self._command += ["--log-format", log_format]
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def report(self, *, since: datetime | None, until: datetime | None, examples: int) -> str:
        """The report over ``[since, until)`` as docs/reports.md's JSON text."""
        query = {"since": _iso(since), "until": _iso(until), "examples": examples}
        with self._lock:
            answer = self._ask(json.dumps(query))
        return _unpacked(answer, REPORT)

    def gate(
        self, params: dict[str, str], rollout: dict[str, Any], *, now: datetime | None = None
    ) -> str:
        """The gate's answer (:class:`~strangler.sidecar.gate_answer.GateAnswer`'s JSON text)
        to the endpoint's ``params`` for the ``rollout`` it read, judged at ``now``."""
        query = {"gate": params, "rollout": rollout, "now": _iso(now)}
        with self._lock:
            answer = self._ask(json.dumps(query))
        return _unpacked(answer, GATE)

    def close(self) -> None:
        """Stop the child, if one runs (idempotent)."""
        with self._lock:
            self._stop()

    def _ask(self, query: str) -> str:
        child = self._running()
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(query + "\n")
            stdin.flush()
            return _read_line(stdout, self._timeout_s).removesuffix("\n")
        except (OSError, EOFError, ValueError) as exc:  # TimeoutError is an OSError
            self._stop()
            raise ReportUnavailable(f"the report process failed: {exc}") from exc

    def _running(self) -> subprocess.Popen[str]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        if self._child is not None:
            _log.warning("report_process_exited", returncode=self._child.returncode)
            self._stop()
        try:
            child = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ReportUnavailable(f"the report process could not start: {exc}") from exc
        assert child.stdin is not None
        child.stdin.write(json.dumps({"ledger_url": self._ledger_url}) + "\n")
        child.stdin.flush()
        self._child = child
        return child

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
        if child.poll() is None:
            child.kill()
        child.wait(timeout=_STOP_TIMEOUT_S)


class ThreadReports:
    """Reports over ``runtime.ledger``, one at a time on a thread of this process, niced."""

    def __init__(self, runtime: SidecarRuntime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        # Made on first use: under gunicorn, in the worker process, after the fork.
        self._runner: ThreadPoolExecutor | None = None

    def report(self, *, since: datetime | None, until: datetime | None, examples: int) -> str:
        """The report over ``[since, until)`` as docs/reports.md's JSON text."""

        def compute() -> str:
            ledger = self._runtime.ledger  # read per report: a test may swap it
            report = ledger.report(since=since, until=until, examples=examples)
            return json.dumps(report_to_dict(report), sort_keys=True, separators=(",", ":"))

        return self._background().submit(compute).result()

    def gate(
        self, params: dict[str, str], rollout: dict[str, Any], *, now: datetime | None = None
    ) -> str:
        """The gate's answer (:class:`~strangler.sidecar.gate_answer.GateAnswer`'s JSON text)
        to the endpoint's ``params`` for the ``rollout`` it read, judged at ``now``."""

        def compute() -> str:
            fixed = FixedRollout(state_from_json(rollout))
            query = GateQuery.parse(params)
            return gate_answer(fixed, self._runtime.ledger, query, now=now).to_json()

        return self._background().submit(compute).result()

    def close(self) -> None:
        """Let the thread end (idempotent)."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=False)

    def _background(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._runner is None:
                self._runner = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="report", initializer=lower_thread_priority
                )
            return self._runner


def lower_thread_priority() -> bool:
    """Lower this thread's CPU priority by NICENESS; False where threads share the process's.

    Linux schedules threads one by one, so only the calling thread is lowered.
    """
    if sys.platform != "linux":
        return False
    me = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, me, min(os.getpriority(os.PRIO_PROCESS, me) + NICENESS, 19))
    return True


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_line(stream: IO[str], timeout_s: float) -> str:
    """One whole line from ``stream`` within ``timeout_s``; raises on timeout or end."""
    ready, _, _ = select.select([stream], [], [], timeout_s)
    if not ready:
        raise TimeoutError(f"no report within {timeout_s:g} s")
    line = stream.readline()
    if not line.endswith("\n"):
        raise EOFError("the report process exited")
    return line


def _unpacked(answer: str, kind: str) -> str:
    """The JSON text of a child's ``kind`` answer, or its error raised as the caller's."""
    if answer.startswith(kind):
        return answer.removeprefix(kind)
    if not answer.startswith(ERROR):
        raise ReportUnavailable(f"the report process answered {answer[:80]!r}")
    error: dict[str, Any] = json.loads(answer.removeprefix(ERROR))
    message = str(error.get("message", "no message"))
    if error.get("error") == "invalid_query":
        raise ValueError(message)
    if error.get("error") == "ledger_unavailable":
        raise LedgerError(message)
    raise ReportUnavailable(f"the report could not be computed: {message}")
