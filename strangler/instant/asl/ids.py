"""Random version-4 UUID strings, cheaply, from an injectable random source."""

from __future__ import annotations

import random

__all__ = ["random_uuid"]

_DEFAULT = random.Random()
_VERSION_4 = (0x4 << 76) | (0x2 << 62)  # version nibble and RFC 4122 variant bits
_CLEAR = ~((0xF << 76) | (0x3 << 62))


def random_uuid(rng: random.Random | None = None) -> str:
    """A UUID4 string drawn from ``rng`` (a process-wide generator when None).

    Request ids and execution names need to be unique, not unguessable, and this is
    several times faster than :func:`uuid.uuid4`, which reads the OS entropy pool.
    """
    bits = ((rng or _DEFAULT).getrandbits(128) & _CLEAR) | _VERSION_4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
