"""The public API: everything in strangler.__all__ is importable from the top level."""

from __future__ import annotations

import subprocess
import sys

import pytest

import strangler


@pytest.mark.parametrize("name", strangler.__all__)
def test_every_public_name_resolves(name: str) -> None:
    """Each name listed in __all__ is an attribute of the package."""
    assert getattr(strangler, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    """A typo gives the usual AttributeError naming the attribute."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = strangler.no_such_thing  # type: ignore[attr-defined]


def test_importing_the_package_stays_light() -> None:
    """Importing strangler loads neither Flask, SQLAlchemy, boto3 nor the Unleash SDK."""
    probe = (
        "import sys, strangler; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'boto3', 'UnleashClient') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
