"""ReportCache: a report is kept for a few seconds and computed once for concurrent askers."""

from __future__ import annotations

import threading

import pytest

from strangler.sidecar.exceptions import ReportsBusy
from strangler.sidecar.report_cache import ReportCache


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


def test_past_max_pending_a_different_question_is_refused() -> None:
    """While max_pending other keys are computed, one more is refused; the same key waits."""
    cache: ReportCache[str] = ReportCache(max_pending=1)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(timeout=10)
        return "a"

    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(cache.get("a", slow)))
    first.start()
    assert started.wait(timeout=10)
    with pytest.raises(ReportsBusy, match="1 different reports"):
        cache.get("b", lambda: "b")
    release.set()
    first.join(timeout=10)
    assert (answers, cache.get("b", lambda: "b")) == (["a"], "b")
