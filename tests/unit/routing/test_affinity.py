"""A routing process kept on one CPU while others leave it room, and let go when not."""

from __future__ import annotations

import os

import pytest

from strangler.exceptions import ConfigurationError
from strangler.routing import affinity
from strangler.routing.affinity import (
    RETRY_FIRST_S,
    RETRY_MAX_S,
    WINDOW_S,
    AffinityKeeper,
    CpuSample,
    check_routing_cpus,
    keep_routing_cpu,
    read_cpu_sample,
)
from strangler.settings import Settings

TICKS_PER_WINDOW = 100  # per CPU; the samples below are in these units


class Clock:
    """Readings built one window at a time from each CPU's busy share and ours."""

    def __init__(self, cpus: int = 2) -> None:
        self.busy = dict.fromkeys(range(cpus), 0)
        self.total = dict.fromkeys(range(cpus), 0)
        self.ours_s = 0.0
        self.at_s = 1000.0

    def sample(self) -> CpuSample:
        return CpuSample(dict(self.busy), dict(self.total), self.ours_s, self.at_s)

    def window(self, busy: dict[int, float], ours: float) -> CpuSample:
        for cpu in self.busy:
            self.busy[cpu] += round(busy.get(cpu, 0.0) * TICKS_PER_WINDOW)
            self.total[cpu] += TICKS_PER_WINDOW
        self.ours_s += ours * WINDOW_S
        self.at_s += WINDOW_S
        return self.sample()


def keeper(first: int = 1, cpus: int = 2) -> tuple[AffinityKeeper, list[set[int]], Clock]:
    applied: list[set[int]] = []
    clock = Clock(cpus)
    return AffinityKeeper(set(range(cpus)), first, apply=applied.append), applied, clock


def unpinned(keep: AffinityKeeper) -> bool:
    """Read afresh each time (an assert before does not fix it for the checker)."""
    return keep.cpu is None


def run(keep: AffinityKeeper, clock: Clock, busy: dict[int, float], ours: float) -> None:
    before = clock.sample()
    keep.step(before, clock.window(busy, ours))


def test_it_starts_pinned_to_the_first_cpu() -> None:
    keep, applied, _ = keeper(first=1)
    assert keep.cpu == 1
    assert applied == [{1}]


def test_its_own_load_never_moves_it() -> None:
    keep, applied, clock = keeper(first=1)
    for _ in range(20):
        run(keep, clock, {0: 0.05, 1: 1.0}, ours=0.97)
    assert keep.cpu == 1
    assert applied == [{1}]


def test_others_crowding_its_cpu_move_it_to_one_with_room() -> None:
    keep, applied, clock = keeper(first=1)
    run(keep, clock, {0: 0.2, 1: 0.9}, ours=0.5)  # others: 0.4 of CPU 1
    assert keep.cpu == 0
    assert applied == [{1}, {0}]


def test_some_foreign_load_below_the_line_is_tolerated() -> None:
    keep, _, clock = keeper(first=1)
    run(keep, clock, {0: 0.0, 1: 0.7}, ours=0.5)  # others: 0.2
    assert keep.cpu == 1


def test_with_no_cpu_to_move_to_it_runs_anywhere_and_tries_again_later() -> None:
    keep, applied, clock = keeper(first=1)
    run(keep, clock, {0: 0.9, 1: 0.9}, ours=0.3)
    assert keep.cpu is None
    assert applied[-1] == {0, 1}
    # Before the retry time nothing changes, however quiet the host gets.
    windows_before_retry = int(RETRY_FIRST_S / WINDOW_S) - 1
    for _ in range(windows_before_retry):
        run(keep, clock, {0: 0.1, 1: 0.1}, ours=0.1)
        assert keep.cpu is None
    run(keep, clock, {0: 0.3, 1: 0.1}, ours=0.1)
    assert keep.cpu == 1  # the least busy


def test_each_try_that_does_not_hold_waits_twice_as_long_up_to_a_minute() -> None:
    keep, _, clock = keeper(first=1)
    waits = []
    for _ in range(8):
        run(keep, clock, {0: 0.9, 1: 0.9}, ours=0.2)  # crowded: let go
        assert keep.cpu is None
        released_at = clock.at_s
        while unpinned(keep):
            run(keep, clock, {0: 0.1, 1: 0.1}, ours=0.1)
        waits.append(round(clock.at_s - released_at))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert RETRY_MAX_S == 60


def test_a_cpu_that_held_for_a_while_resets_the_wait() -> None:
    keep, _, clock = keeper(first=1)
    run(keep, clock, {0: 0.9, 1: 0.9}, ours=0.2)
    while unpinned(keep):
        run(keep, clock, {0: 0.1, 1: 0.1}, ours=0.1)
    for _ in range(int(RETRY_MAX_S / WINDOW_S) + 2):
        run(keep, clock, {0: 0.1, 1: 0.5}, ours=0.4)
    run(keep, clock, {0: 0.9, 1: 0.9}, ours=0.2)
    released_at = clock.at_s
    while unpinned(keep):
        run(keep, clock, {0: 0.1, 1: 0.1}, ours=0.1)
    assert round(clock.at_s - released_at) == RETRY_FIRST_S


def test_a_retry_waits_while_every_cpu_is_busy_with_others() -> None:
    keep, _, clock = keeper(first=1)
    run(keep, clock, {0: 0.9, 1: 0.9}, ours=0.2)
    for _ in range(40):
        run(keep, clock, {0: 0.95, 1: 0.9}, ours=0.2)
        assert keep.cpu is None


def test_the_sample_reads_every_cpu_this_host_has() -> None:
    sample = read_cpu_sample()
    assert set(sample.busy) == set(sample.total) == set(range(len(sample.busy)))
    assert all(sample.total[cpu] >= sample.busy[cpu] > 0 for cpu in sample.busy)
    assert sample.ours_s > 0


def test_off_and_one_allowed_cpu_leave_placement_to_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[set[int]] = []
    monkeypatch.setattr(affinity, "set_threads_affinity", applied.append)
    assert keep_routing_cpu("off", 0) is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3})
    assert keep_routing_cpu("auto", 0) is None
    assert keep_routing_cpu("3", 0) is None
    assert applied == []


def test_a_list_places_serve_children_round_robin_and_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[set[int]] = []
    monkeypatch.setattr(affinity, "set_threads_affinity", applied.append)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    for index in range(3):
        assert keep_routing_cpu("3,1", index) is None
    assert keep_routing_cpu("2,1", None) is None  # a worker: the first
    assert applied == [{3}, {1}, {3}, {2}]


def test_auto_starts_serve_children_on_the_highest_cpus_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[set[int]] = []
    monkeypatch.setattr(affinity, "set_threads_affinity", applied.append)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    keepers = [keep_routing_cpu("auto", index) for index in range(4)]
    for keep in keepers:
        assert keep is not None
        keep.stop()
    assert applied == [{2}, {1}, {0}, {2}]


def test_a_listed_cpu_the_process_may_not_use_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    with pytest.raises(ConfigurationError, match="lists CPU 4, but this process may only use 0, 1"):
        check_routing_cpus("1,4")


@pytest.mark.parametrize("value", ["", "x", "1,,2", "-1", "1;2", "auto,1"])
def test_settings_refuse_a_malformed_value(value: str) -> None:
    with pytest.raises(ConfigurationError, match="STRANGLER_ROUTING_CPUS must be auto, off"):
        Settings(routing_cpus=value)


@pytest.mark.parametrize("value", ["auto", "off", "0", "3,1", " 2, 0"])
def test_settings_take_auto_off_or_a_list(value: str) -> None:
    assert Settings.from_env({"STRANGLER_ROUTING_CPUS": value}).routing_cpus == value
