"""A routing process kept on one CPU while others leave it room, and let go when not."""

from __future__ import annotations

import os

import pytest

from strangler.exceptions import ConfigurationError
from strangler.routing import affinity
from strangler.routing.affinity import (
    BUSY_WINDOWS,
    QUICK_WINDOWS,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    SPAN_WINDOWS,
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


def keeper(cpus: int = 2) -> tuple[AffinityKeeper, list[set[int]], Clock]:
    applied: list[set[int]] = []
    clock = Clock(cpus)
    keep = AffinityKeeper(set(range(cpus)), apply=applied.append)
    keep.observe(clock.sample())
    return keep, applied, clock


def unpinned(keep: AffinityKeeper) -> bool:
    """Read afresh each time (an assert before does not fix it for the checker)."""
    return keep.cpu is None


def run(keep: AffinityKeeper, clock: Clock, busy: dict[int, float], ours: float) -> None:
    """One window of these shares (each CPU's busy share, the process's cores)."""
    keep.observe(clock.window(busy, ours))


def second(keep: AffinityKeeper, clock: Clock, busy: dict[int, float], ours: float) -> None:
    """A second of these shares: what the process's own use is judged over."""
    for _ in range(BUSY_WINDOWS):
        run(keep, clock, busy, ours)


def span(keep: AffinityKeeper, clock: Clock, busy: dict[int, float], ours: float) -> None:
    """As many windows of these shares as others' use is judged over."""
    for _ in range(SPAN_WINDOWS):
        run(keep, clock, busy, ours)


def pinned_busy(keep: AffinityKeeper, clock: Clock) -> int:
    """Make the process busy on an otherwise idle host for a second: it is pinned, to CPU 1."""
    second(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)
    assert keep.cpu == 1  # the least busy, the highest of equals
    return keep.cpu


def test_an_idle_or_lightly_loaded_process_is_left_to_the_kernel() -> None:
    keep, applied, clock = keeper()
    for ours in (0.0, 0.1, 0.3, 0.5, 0.69):
        second(keep, clock, {0: ours / 2, 1: ours / 2}, ours=ours)
    assert keep.cpu is None
    assert applied == []


def test_bursts_of_a_lightly_loaded_process_beside_a_busy_neighbour_do_not_pin_it() -> None:
    """As a routing child's bursts come with its legacy app's: judged over the second."""
    keep, applied, clock = keeper()
    for _ in range(5):
        for ours in (1.0, 1.0, 0.9, 0.2, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1):  # 0.38 a second
            neighbour = ours * 0.7
            run(keep, clock, {0: (ours + neighbour) / 2, 1: (ours + neighbour) / 2}, ours=ours)
    assert applied == []


def test_on_a_quiet_host_a_busy_process_is_pinned_within_a_few_windows() -> None:
    keep, applied, clock = keeper()
    for _ in range(QUICK_WINDOWS):
        run(keep, clock, {0: 0.45, 1: 0.5}, ours=0.9)  # others: 0.05 of a core
    assert applied == [{0}]


def test_beside_others_using_more_than_a_fifth_of_a_core_it_waits_for_a_busy_second() -> None:
    keep, applied, clock = keeper()
    for _ in range(BUSY_WINDOWS - 1):
        run(keep, clock, {0: 0.6, 1: 0.6}, ours=0.9)  # others: 0.3 of a core
    assert applied == []
    run(keep, clock, {0: 0.6, 1: 0.6}, ours=0.9)
    assert keep.cpu == 1


def test_a_busy_process_is_pinned_to_the_least_busy_cpu() -> None:
    keep, applied, clock = keeper(cpus=3)
    second(keep, clock, {0: 0.9, 1: 0.3, 2: 0.6}, ours=0.8)
    assert keep.cpu == 1
    assert applied == [{1}]


def test_a_busy_process_is_not_pinned_where_others_leave_no_room() -> None:
    keep, applied, clock = keeper()
    second(keep, clock, {0: 1.0, 1: 0.95}, ours=0.8)  # others: about 0.55 of each
    assert keep.cpu is None
    assert applied == []


def test_its_own_load_never_moves_it() -> None:
    keep, applied, clock = keeper()
    pinned_busy(keep, clock)
    for _ in range(20):
        run(keep, clock, {0: 0.05, 1: 1.0}, ours=0.97)
    assert keep.cpu == 1
    assert applied == [{1}]


def test_a_second_of_light_load_lets_it_run_anywhere_again() -> None:
    keep, applied, clock = keeper()
    pinned_busy(keep, clock)
    for _ in range(BUSY_WINDOWS // 2):
        run(keep, clock, {0: 0.0, 1: 0.1}, ours=0.1)
    assert keep.cpu == 1  # half a second: 0.5 a core over the last second
    for _ in range(BUSY_WINDOWS // 2):
        run(keep, clock, {0: 0.0, 1: 0.1}, ours=0.1)
    assert keep.cpu is None
    assert applied == [{1}, {0, 1}]
    second(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)  # a busy second again: pinned again
    assert keep.cpu is not None


def test_others_crowding_its_cpu_move_it_to_one_with_room() -> None:
    keep, applied, clock = keeper()
    pinned_busy(keep, clock)
    span(keep, clock, {0: 0.2, 1: 1.0}, ours=0.6)  # others: 0.4 of CPU 1
    assert keep.cpu == 0
    assert applied == [{1}, {0}]


def test_some_foreign_load_below_the_line_is_tolerated() -> None:
    keep, _, clock = keeper()
    pinned_busy(keep, clock)
    span(keep, clock, {0: 0.0, 1: 0.95}, ours=0.75)  # others: 0.2
    assert keep.cpu == 1


def test_with_no_cpu_to_move_to_it_runs_anywhere_and_is_kept_again_later() -> None:
    keep, applied, clock = keeper()
    pinned_busy(keep, clock)
    span(keep, clock, {0: 0.9, 1: 1.0}, ours=0.7)
    assert keep.cpu is None
    assert applied[-1] == {0, 1}
    # Before the retry time it is not pinned, however busy it is and quiet the host.
    for _ in range(int(RETRY_FIRST_S / WINDOW_S) - 1):
        run(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)
        assert keep.cpu is None
    run(keep, clock, {0: 0.4, 1: 0.5}, ours=0.9)
    assert keep.cpu == 0  # the least busy


def test_each_crowding_with_nowhere_to_go_waits_twice_as_long_up_to_a_minute() -> None:
    keep, _, clock = keeper()
    pinned_busy(keep, clock)
    waits = []
    for _ in range(8):
        span(keep, clock, {0: 0.9, 1: 1.0}, ours=0.7)  # crowded: let go
        assert keep.cpu is None
        released_at = clock.at_s
        while unpinned(keep):
            run(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)
        waits.append(round(clock.at_s - released_at))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert RETRY_MAX_S == 60


def test_a_cpu_that_held_for_a_while_resets_the_wait() -> None:
    keep, _, clock = keeper()
    pinned_busy(keep, clock)
    span(keep, clock, {0: 0.9, 1: 1.0}, ours=0.7)
    while unpinned(keep):
        run(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)
    for _ in range(int(RETRY_MAX_S / WINDOW_S) + 2):
        run(keep, clock, {0: 0.1, 1: 0.9}, ours=0.9)
    span(keep, clock, {0: 1.0, 1: 1.0}, ours=0.7)
    released_at = clock.at_s
    while unpinned(keep):
        run(keep, clock, {0: 0.45, 1: 0.45}, ours=0.9)
    assert round(clock.at_s - released_at) == RETRY_FIRST_S


def test_stopping_lets_the_threads_run_anywhere_again() -> None:
    keep, applied, clock = keeper()
    pinned_busy(keep, clock)
    keep.stop()
    assert keep.cpu is None
    assert applied == [{1}, {0, 1}]


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


def test_auto_starts_a_keeper_that_pins_nothing_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[set[int]] = []
    monkeypatch.setattr(affinity, "set_threads_affinity", applied.append)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    keep = keep_routing_cpu("auto", 0)
    assert keep is not None
    assert keep.cpu is None
    keep.stop()
    assert applied == []


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
