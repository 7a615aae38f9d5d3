"""Rollout tests write flag files with the flags suite's fixtures."""

from tests.unit.flags.conftest import embedded, flag_file

__all__ = ["embedded", "flag_file"]
