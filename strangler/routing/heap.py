"""The routing process's heap, kept cheap for Python's cyclic garbage collector.

A full (oldest-generation) collection walks every object the process tracks, holding
the GIL throughout: every thread stops, the dispatcher's workers in the middle of an
order included. In a routing process most of those objects are its start-up heap
(modules, SQLAlchemy's tables and compiled statements, the state machine definition,
about 100,000 objects), which never become garbage. With 64 always-failing orders in
flight, a full collection came every 7 s or so (failed attempts and finished executions
left cyclic garbage behind, since fixed at the source) and took 130-164 ms of CPU; the
good orders running at that moment waited it out (head-of-line bench, shipped layout:
the slowest good orders' time was one such pause, docs/BENCHMARKS.md).
:func:`freeze_start_up_heap` moves the start-up heap out of the collector's sight
(:func:`gc.freeze`), so a full collection walks only what the process allocated since:
the orders in flight.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_start_up_heap"]


def freeze_start_up_heap() -> int:
    """Collect once, then move every object alive into the permanent generation.

    Call it once a routing process has built its parts and before it takes orders (the
    objects alive then stay for the process's life). Frozen objects are still freed when
    their reference count drops; only the cyclic collector ignores them. Returns how
    many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
