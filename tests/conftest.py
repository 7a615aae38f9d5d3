"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tests.helpers import fresh_pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    with fresh_pg_database("strangler_test") as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def logging_stays_with_its_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A command run in-process configures structlog for the whole process (INFO, loggers
    cached on first use); each test gets the configuration back as it found it, and no
    logger is cached for good, so a later test's capture_logs sees every level."""
    before = structlog.get_config()
    configure = structlog.configure

    def configure_uncached(**options: Any) -> None:
        configure(**{**options, "cache_logger_on_first_use": False})

    monkeypatch.setattr(structlog, "configure", configure_uncached)
    yield
    configure(**before)
