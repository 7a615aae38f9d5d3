"""ReportCache: a report is kept for a few seconds and computed once for concurrent askers."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from strangler.sidecar.report_cache import NICENESS, ReportCache


def test_a_fresh_answer_is_kept_and_an_old_one_computed_again() -> None:
    """Within ttl_s the kept answer comes back; after it, the answer is computed anew."""
    now = [0.0]
    computed: list[int] = []
    cache: ReportCache[int] = ReportCache(ttl_s=5.0, clock=lambda: now[0])

    def compute() -> int:
        computed.append(len(computed))
        return len(computed)

    answers = [cache.get("q", compute), cache.get("q", compute)]
    now[0] = 5.0
    answers.append(cache.get("q", compute))
    assert (answers, len(computed)) == ([1, 1, 2], 2)


def test_different_questions_are_kept_apart() -> None:
    """Each key has its own answer."""
    cache: ReportCache[str] = ReportCache()
    assert [cache.get("a", lambda: "A"), cache.get("b", lambda: "B")] == ["A", "B"]


def test_concurrent_askers_share_one_computation() -> None:
    """Askers arriving while the answer is computed wait for it instead of computing again."""
    cache: ReportCache[str] = ReportCache()
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        release.wait(timeout=10)
        return "report"

    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(cache.get("q", slow)))
    first.start()
    assert started.wait(timeout=10)
    waiters = [
        threading.Thread(target=lambda: answers.append(cache.get("q", slow))) for _ in range(3)
    ]
    for waiter in waiters:
        waiter.start()
    release.set()
    for thread in (first, *waiters):
        thread.join(timeout=10)
    assert (answers, calls) == (["report"] * 4, ["slow"])


def test_a_failure_is_not_kept() -> None:
    """A computation that raises reaches the caller; the next ask computes again."""
    cache: ReportCache[str] = ReportCache()

    def broken() -> str:
        raise ValueError("ledger down")

    with pytest.raises(ValueError, match="ledger down"):
        cache.get("q", broken)
    assert cache.get("q", lambda: "ok") == "ok"


def test_old_questions_make_room() -> None:
    """Past max_entries the least recently kept answer is dropped."""
    cache: ReportCache[int] = ReportCache(max_entries=2)
    for n in range(3):
        cache.get(n, lambda n=n: n)  # type: ignore[misc]
    assert cache.get(0, lambda: 99) == 99


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_answers_are_computed_at_a_lower_cpu_priority() -> None:
    """The computation runs on a thread of its own, niced, so the intake's threads come first."""
    cache: ReportCache[tuple[int, int]] = ReportCache()
    caller = (threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    def where() -> tuple[int, int]:
        me = threading.get_native_id()
        return me, os.getpriority(os.PRIO_PROCESS, me)

    thread, priority = cache.get("q", where)
    assert thread != caller[0]
    assert priority == min(caller[1] + NICENESS, 19)
