"""Where the sidecar computes reports: a lower-priority child process, or a niced thread."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strangler.exceptions import LedgerError
from strangler.ledger import ledger_from_url
from strangler.ledger.sql_ledger import SqlLedger
from strangler.report.render_json import report_to_dict
from strangler.rollout.controller import RolloutState
from strangler.sidecar import report_child
from strangler.sidecar.exceptions import ReportUnavailable
from strangler.sidecar.gate_answer import (
    FixedRollout,
    GateAnswer,
    GateQuery,
    gate_answer,
    state_from_json,
    state_to_json,
)
from strangler.sidecar.report_child import REPORT
from strangler.sidecar.report_process import (
    NICENESS,
    ReportProcess,
    ThreadReports,
    _read_line,
    _unpacked,
)
from tests.helpers import wait_until
from tests.unit.report.known_ledger import T0, UNTIL, build_known_ledger
from tests.unit.sidecar.fakes import FakeRuntime

WINDOW: dict[str, Any] = {"since": T0, "until": UNTIL, "examples": 3}


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    """A SQLite file ledger holding the known-answer rows."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = ledger_from_url(url)
    build_known_ledger(ledger.engine)
    ledger.close()
    return url


@pytest.fixture
def child(ledger_url: str) -> Iterator[ReportProcess]:
    """A report process on the known ledger, stopped after the test."""
    reports = ReportProcess(ledger_url, timeout_s=60.0)
    yield reports
    reports.close()


def _in_process(url: str) -> dict[str, Any]:
    ledger = ledger_from_url(url)
    try:
        return report_to_dict(ledger.report(**WINDOW))
    finally:
        ledger.close()


def _without_generated_at(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "generated_at"}


def test_the_child_answers_the_same_report_as_this_process(
    child: ReportProcess, ledger_url: str
) -> None:
    """The child's JSON is the report computed here over the same window (its time aside)."""
    expected = _without_generated_at(_in_process(ledger_url))
    assert expected == _without_generated_at(json.loads(child.report(**WINDOW)))


def test_the_child_runs_at_a_lower_cpu_priority(child: ReportProcess) -> None:
    """The child runs NICENESS nice levels below this process (never above 19), in the
    normal scheduling class: lower, yet never starved by a busy host."""
    child.report(**WINDOW)
    assert child.pid is not None
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, mine + NICENESS)
    assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER


def test_a_dead_child_is_replaced_by_the_next_report(child: ReportProcess) -> None:
    """A child killed between reports is noticed, and a new one answers the next report."""
    first = json.loads(child.report(**WINDOW))
    dead = child.pid
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: child.pid is None, 10.0, "the child to exit")
    assert (_without_generated_at(json.loads(child.report(**WINDOW))), child.pid != dead) == (
        _without_generated_at(first),
        True,
    )


def test_a_child_that_cannot_open_the_ledger_is_unavailable(tmp_path: Path) -> None:
    """A ledger the child cannot open is ReportUnavailable, not a hang."""
    (tmp_path / "not-a-dir").write_text("a file where the ledger's folder should be")
    reports = ReportProcess(f"sqlite:///{tmp_path / 'not-a-dir' / 'ledger.sqlite3'}")
    try:
        with pytest.raises(ReportUnavailable, match="the report process failed"):
            reports.report(**WINDOW)
    finally:
        reports.close()


def test_a_silent_child_times_out() -> None:
    """Reading an answer that never comes raises TimeoutError after the timeout."""
    read, write = os.pipe()
    with (
        os.fdopen(read) as stream,
        os.fdopen(write, "w"),
        pytest.raises(TimeoutError, match=r"no report within 0\.05 s"),
    ):
        _read_line(stream, 0.05)


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        ('error {"error": "invalid_query", "message": "m"}', ValueError),
        ('error {"error": "ledger_unavailable", "message": "m"}', LedgerError),
        ('error {"error": "report_failed", "message": "m"}', ReportUnavailable),
        ("Traceback (most recent call last):", ReportUnavailable),
    ],
    ids=["invalid", "ledger", "failed", "garbled"],
)
def test_a_childs_error_is_raised_as_the_callers_exception(
    answer: str, raised: type[Exception]
) -> None:
    """Each error code of the child's protocol becomes its exception, with the message."""
    with pytest.raises(raised, match="m"):
        _unpacked(answer, REPORT)


def test_a_childs_report_is_passed_on_as_it_is() -> None:
    """The report's JSON text leaves the child's line untouched (never parsed here)."""
    assert _unpacked('report {"b":1,"a":2}', REPORT) == '{"b":1,"a":2}'


class _BrokenLedger:
    def report(self, **_window: Any) -> Any:
        raise LedgerError("disk I/O error", operation="read the report")


def test_the_childs_answer_names_a_ledger_failure() -> None:
    """A ledger failure in the child is answered as ledger_unavailable with its message."""
    answer = report_child.answer(_BrokenLedger(), {"since": None, "until": None})  # type: ignore[arg-type]
    assert answer == (
        'error {"error": "ledger_unavailable", '
        '"message": "could not read the report: disk I/O error"}'
    )


def _rollout(revision: str, **changes: Any) -> RolloutState:
    fields: dict[str, Any] = {
        "flag": "city_orders_instant_processing",
        "mode": "embedded",
        "source": "flags/test.json",
        "enabled": True,
        "rollout": 25,
        "variant_weights": {"instant": 500, "shadow": 500},
        "revision": revision,
    }
    return RolloutState(**{**fields, **changes})


GATE_CASES = [
    (_rollout("r1"), {}),  # the step since the 10 -> 25 change, judged with the defaults
    (_rollout("r1"), {"min_orders": "1", "no_evidence": "true", "max_error_rate": "60%"}),
    (_rollout("r1"), {"rollback_on_fail": "true", "max_mismatch": "0.01%", "min_orders": "1"}),
    (_rollout("r1", rollout=100, enabled=False), {"ok_when": "any", "max_hold": "5m"}),
    (_rollout("r9"), {"ok_when": "fail"}),  # a step the timeline does not hold
]


@pytest.mark.parametrize(("rollout", "params"), GATE_CASES, ids=lambda case: str(case)[:40])
def test_the_child_answers_the_same_gate_as_this_process(
    child: ReportProcess, ledger_url: str, rollout: RolloutState, params: dict[str, str]
) -> None:
    """The gate's status and body from the child are exactly those computed here (same time)."""
    ledger = ledger_from_url(ledger_url)
    try:
        here = gate_answer(FixedRollout(rollout), ledger, GateQuery.parse(params), now=UNTIL)
    finally:
        ledger.close()
    there = GateAnswer.from_json(child.gate(params, state_to_json(rollout), now=UNTIL))
    assert there == here
    assert json.dumps(there.body, sort_keys=True) == json.dumps(here.body, sort_keys=True)


def test_a_rollout_goes_to_the_child_and_back_unchanged() -> None:
    """The rollout the endpoint read is the one the child judges."""
    rollout = _rollout("r1", variant_weights={"instant": 250, "shadow": 750})
    assert state_from_json(json.loads(json.dumps(state_to_json(rollout)))) == rollout


def test_a_gate_query_without_a_rollout_is_an_error_answer(ledger_url: str) -> None:
    """A malformed gate query is answered with an error line, never a crash of the child."""
    ledger = ledger_from_url(ledger_url)
    try:
        answer = report_child.answer(ledger, {"gate": {}})
    finally:
        ledger.close()
    assert answer.startswith('error {"error": "report_failed"')


def test_the_thread_fallback_answers_the_same_gate(ledger_url: str) -> None:
    """ThreadReports (a ledger no other process can open) gives the child's answer too."""
    rollout, params = GATE_CASES[1]
    ledger = ledger_from_url(ledger_url)
    reports = ThreadReports(FakeRuntime(ledger=ledger))  # type: ignore[arg-type]
    try:
        here = gate_answer(FixedRollout(rollout), ledger, GateQuery.parse(params), now=UNTIL)
        there = GateAnswer.from_json(reports.gate(params, state_to_json(rollout), now=UNTIL))
    finally:
        reports.close()
        ledger.close()
    assert there == here


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_thread_reports_run_on_a_niced_thread_of_their_own(ledger_url: str) -> None:
    """The fallback computes on its own thread, niced, so the intake's threads come first."""
    ledger = ledger_from_url(ledger_url)
    caller = threading.get_native_id()
    seen: list[tuple[int, int]] = []

    class Spy:
        def report(self, **window: Any) -> Any:
            me = threading.get_native_id()
            seen.append((me, os.getpriority(os.PRIO_PROCESS, me)))
            return SqlLedger.report(ledger, **window)

    reports = ThreadReports(FakeRuntime(ledger=Spy()))  # type: ignore[arg-type]
    try:
        reports.report(**WINDOW)
    finally:
        reports.close()
        ledger.close()
    base = os.getpriority(os.PRIO_PROCESS, caller)
    assert [(tid != caller, nice) for tid, nice in seen] == [(True, min(base + NICENESS, 19))]
