"""The CLI tests use the shipped flag file's copy from the flags tests."""

from tests.unit.flags.conftest import flag_file

__all__ = ["flag_file"]
