"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import fresh_pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    with fresh_pg_database("strangler_test") as url:
        yield url.render_as_string(hide_password=False)
