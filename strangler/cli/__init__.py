"""Every click command and nothing else; ``strangler.cli.main`` loads the commands lazily."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``main``, for installs whose console script still says ``strangler.cli:main``."""
    if name != "main":
        raise AttributeError(f"module 'strangler.cli' has no attribute {name!r}")
    from strangler.cli.main import main  # noqa: PLC0415  (loaded on first use, not on import)

    return main
