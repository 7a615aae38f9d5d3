"""The child process that computes the sidecar's reports, at a lower CPU priority.

Started by :class:`strangler.sidecar.report_process.ReportProcess` as
``python -m strangler.sidecar.report_child``. It speaks JSON lines: the first line on
stdin is ``{"ledger_url": ...}`` (on stdin, not argv, so a password never shows in
``ps``); then each line is a query and each answer one line on stdout:

- a report ``{"since", "until", "examples"}`` (ISO times or null): ``report `` and
  docs/reports.md's JSON, passed on by the sidecar as it is (no parsing and dumping
  again in the intake's process);
- the gate's verdict ``{"gate": {<the endpoint's options>}, "rollout": {<the rollout
  read by the sidecar>}, "now": <ISO time or null>}``: ``gate `` and
  :class:`~strangler.sidecar.gate_answer.GateAnswer`'s JSON (status and body);
- either can be answered ``error {"error": "<code>", "message": "<why>"}``.

It ends at end of input (its parent gone).

It runs :data:`NICENESS` nice levels below its parent: when the intake and the report
want the same core, the intake gets about nine tenths of it, and the report still
progresses on a host whose cores are kept busy; being a process of its own, it shares no
GIL with the intake's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import IO, Any

import structlog

from strangler.exceptions import LedgerError
from strangler.ledger.sql_ledger import SqlLedger, ledger_from_url
from strangler.logs import configure_logging
from strangler.report.render_json import report_to_dict
from strangler.sidecar.gate_answer import FixedRollout, GateQuery, gate_answer, state_from_json

__all__ = ["ERROR", "GATE", "NICENESS", "REPORT", "answer", "lower_cpu_priority", "main", "serve"]

REPORT = "report "
GATE = "gate "
ERROR = "error "
# How much lower than its parent's the report's CPU priority is (a nice increment).
NICENESS = 10

_log = structlog.get_logger()


def lower_cpu_priority() -> str:
    """Lower this process's CPU priority by :data:`NICENESS`; its nice value, as text.

    Not ``SCHED_IDLE``: a process in that class gets no CPU at all while other processes
    keep the cores busy, so on a saturated host a report never ended (and its open read
    snapshot kept SQLite from checkpointing the WAL) until the parent's time limit.
    """
    return f"nice {os.nice(NICENESS)}"


def answer(ledger: SqlLedger, query: dict[str, Any]) -> str:
    """The answer line to one query (without its newline): the report, the gate, or the error."""
    try:
        if "gate" in query:
            return GATE + _gate(ledger, query)
        report = ledger.report(
            since=_when(query.get("since")),
            until=_when(query.get("until")),
            examples=int(query.get("examples", 10)),
        )
    except ValueError as exc:
        return _error("invalid_query", str(exc))
    except LedgerError as exc:
        return _error("ledger_unavailable", str(exc))
    except Exception as exc:  # the parent answers 503 with the message; the log has the trace
        _log.error("report_failed", exc_info=exc)
        return _error("report_failed", f"{type(exc).__name__}: {exc}")
    return REPORT + json.dumps(report_to_dict(report), sort_keys=True, separators=(",", ":"))


def _gate(ledger: SqlLedger, query: dict[str, Any]) -> str:
    """The gate's answer; the step window and every ledger read are the evaluation's own."""
    rollout = FixedRollout(state_from_json(query["rollout"]))
    judged = GateQuery.parse(query["gate"])
    return gate_answer(rollout, ledger, judged, now=_when(query.get("now"))).to_json()


def _error(code: str, message: str) -> str:
    return ERROR + json.dumps({"error": code, "message": message})


def serve(ledger: SqlLedger, queries: IO[str], answers: IO[str]) -> None:
    """Answer each query line with one answer line until ``queries`` ends."""
    for line in queries:
        answers.write(answer(ledger, json.loads(line)) + "\n")
        answers.flush()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def main() -> None:
    """Entry point of the child (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-format", default="json")
    configure_logging(parser.parse_args().log_format)
    hello = json.loads(sys.stdin.readline() or "{}")
    if "ledger_url" not in hello:
        raise SystemExit('report_child: the first input line must be {"ledger_url": ...}')
    # Opened first: opening may migrate, and a write lock must not wait on an idle CPU.
    ledger = ledger_from_url(hello["ledger_url"])
    policy = lower_cpu_priority()
    _log.info("report_process_started", pid=os.getpid(), cpu_policy=policy)
    try:
        serve(ledger, sys.stdin, sys.stdout)
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
