"""The dispatcher's job queue: fresh orders first, resumed ones bounded and never starved."""

from __future__ import annotations

import threading

import pytest

from strangler.routing.jobs import JobQueue


def queue(max_resumed: int = 3, fresh_in_a_row: int = 4) -> JobQueue[str, int]:
    return JobQueue(max_resumed=max_resumed, fresh_in_a_row=fresh_in_a_row)


def take(jobs: JobQueue[str, int], n: int) -> list[str | int | None]:
    return [jobs.get(timeout=0) for _ in range(n)]


def test_a_fresh_order_goes_before_resumed_ones_queued_earlier() -> None:
    jobs = queue()
    jobs.put_resumed(1)
    jobs.put_resumed(2)
    jobs.put_fresh("a")
    assert take(jobs, 3) == ["a", 1, 2]


def test_each_kind_is_first_in_first_out() -> None:
    jobs = queue(max_resumed=5)
    for n in range(3):
        jobs.put_resumed(n)
    for name in "abc":
        jobs.put_fresh(name)
    assert take(jobs, 6) == ["a", "b", "c", 0, 1, 2]


def test_a_resumed_order_goes_next_once_enough_fresh_ones_passed_it() -> None:
    """A steady stream of fresh orders cannot hold a resumed one back for ever."""
    jobs = queue(fresh_in_a_row=2)
    jobs.put_resumed(1)
    jobs.put_resumed(2)
    for name in "abcdef":
        jobs.put_fresh(name)
    assert take(jobs, 8) == ["a", "b", 1, "c", "d", 2, "e", "f"]


def test_fresh_orders_taken_with_no_resumed_one_waiting_do_not_count_as_passing() -> None:
    jobs = queue(fresh_in_a_row=2)
    for name in "abc":
        jobs.put_fresh(name)
    assert take(jobs, 2) == ["a", "b"]
    jobs.put_resumed(1)
    jobs.put_fresh("d")
    assert take(jobs, 3) == ["c", "d", 1]


def test_resumed_orders_hold_at_most_max_resumed_workers() -> None:
    jobs = queue(max_resumed=2)
    for n in range(4):
        jobs.put_resumed(n)
    assert take(jobs, 2) == [0, 1]
    with pytest.raises(TimeoutError):
        jobs.get(timeout=0)
    assert jobs.counts() == (0, 2, 2)
    jobs.put_fresh("a")
    assert jobs.get(timeout=0) == "a"  # a fresh order still finds a worker
    jobs.resumed_done()
    assert jobs.get(timeout=0) == 2
    with pytest.raises(TimeoutError):
        jobs.get(timeout=0)


def test_a_finished_resumed_job_wakes_a_worker_waiting_for_its_place() -> None:
    jobs = queue(max_resumed=1)
    jobs.put_resumed(0)
    jobs.put_resumed(1)
    assert jobs.get(timeout=0) == 0
    got: list[str | int | None] = []
    waiter = threading.Thread(target=lambda: got.append(jobs.get(timeout=10)))
    waiter.start()
    jobs.resumed_done()
    waiter.join(10)
    assert got == [1]


class CountingCondition(threading.Condition):
    """A condition that counts its notifications (each would wake a waiting worker)."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_a_worker_is_woken_only_for_a_job_it_may_take() -> None:
    """Waking a worker for nothing costs a thread switch: a resumed job queued while
    resumed ones hold every place, or one finished with none queued, wakes nobody."""
    jobs = queue(max_resumed=1)
    ready = jobs._ready = CountingCondition()
    jobs.put_resumed(0)
    assert (jobs.get(timeout=0), ready.notified) == (0, 1)
    jobs.put_resumed(1)
    assert ready.notified == 1  # its place is held: nobody may take it yet
    jobs.resumed_done()
    assert (ready.notified, jobs.get(timeout=0)) == (2, 1)
    jobs.resumed_done()
    assert ready.notified == 2  # nothing queued: nothing to wake a worker for


def test_stop_marks_come_after_every_job_a_worker_may_take() -> None:
    jobs = queue(max_resumed=1)
    jobs.put_stop()
    jobs.put_resumed(0)
    jobs.put_resumed(1)
    jobs.put_fresh("a")
    # The second resumed order waits for the first one's place: the stop mark goes first.
    assert take(jobs, 3) == ["a", 0, None]
    jobs.resumed_done()
    assert jobs.get(timeout=0) == 1


def test_take_fresh_empties_the_fresh_orders_only() -> None:
    jobs = queue()
    jobs.put_fresh("a")
    jobs.put_resumed(0)
    jobs.put_fresh("b")
    assert jobs.take_fresh() == ["a", "b"]
    assert take(jobs, 1) == [0]


def test_resumed_done_without_a_resumed_job_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="without a resumed job"):
        queue().resumed_done()


@pytest.mark.parametrize("options", [{"max_resumed": 0}, {"fresh_in_a_row": 0}])
def test_bad_bounds_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        JobQueue(**{"max_resumed": 1, "fresh_in_a_row": 1, **options})
