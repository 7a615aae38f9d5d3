"""The routing process's start-up heap, moved out of the cyclic collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from strangler.routing.heap import freeze_start_up_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the frozen objects back to the collector after the test (this process lives on)."""
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not() -> None:
    """What is alive when the heap is frozen is left out of every collection (a full one
    walks only what came after); what is allocated later is collected as usual."""
    start_up = [[n] for n in range(1_000)]
    frozen = freeze_start_up_heap()
    later = [[n] for n in range(10)]
    tracked = {id(o) for o in gc.get_objects()}
    # Frozen objects still die by reference count (a leftover thread of an earlier test
    # can free some meanwhile), so the count can only have dropped since the freeze.
    assert len(start_up) <= gc.get_freeze_count() <= frozen
    assert frozen >= len(start_up)
    assert [id(o) in tracked for o in (start_up, start_up[0], later, later[0])] == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.usefixtures("unfrozen")
def test_garbage_left_before_the_freeze_is_collected_first() -> None:
    """A cycle that is garbage already is collected, not frozen for the process's life."""
    cycle: list[object] = []
    cycle.append(cycle)
    gc.disable()
    try:
        del cycle
        freeze_start_up_heap()
        gc.unfreeze()
        assert gc.collect() == 0
    finally:
        gc.enable()
