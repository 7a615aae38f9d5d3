"""The public API: everything in strangler.__all__ is importable from the top level."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import strangler
from strangler._moved import MOVED


@pytest.mark.parametrize("name", strangler.__all__)
def test_every_public_name_resolves(name: str) -> None:
    """Each name listed in __all__ is an attribute of the package."""
    assert getattr(strangler, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    """A typo gives the usual AttributeError naming the attribute."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = strangler.no_such_thing  # type: ignore[attr-defined]


HEAVY = ("flask", "sqlalchemy", "boto3", "botocore", "requests", "UnleashClient")
ASL_EXECUTOR = "strangler.instant.asl.executor"


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        pytest.param("strangler", (), id="package"),
        pytest.param("strangler.protocols", (), id="protocols"),
        pytest.param("strangler.routing.router", (), id="router"),
        pytest.param("strangler.flags.file", (), id="flag-file-model"),
        pytest.param("strangler.instant.handlers", (), id="lambda-steps"),
        pytest.param("strangler.instant.dispatcher", ("boto3", "botocore"), id="lambda-dispatcher"),
    ],
)
def test_importing_stays_light(module: str, allowed: tuple[str, ...]) -> None:
    """A fresh process importing the module loads no heavy library it does not need.

    The Lambda entry points the CloudFormation template names load only their own client
    (urllib3, not heavy, for the steps; boto3 for the dispatcher) and never the local ASL
    executor.
    """
    probe = (
        f"import sys, {module}; "
        f"print(sorted(m for m in {(*HEAVY, ASL_EXECUTOR)!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == str(sorted(allowed))


@pytest.mark.parametrize(
    "package",
    [
        "strangler.flags",
        "strangler.instant",
        "strangler.instant.asl",
        "strangler.ledger",
        "strangler.legacy_adapter",
    ],
)
def test_every_subpackage_name_resolves(package: str) -> None:
    """Each name a subpackage lists in __all__ loads on first use, as the real object."""
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_is_the_moved_module_with_a_warning(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    warning = rf"{old} moved to {new}; the old path goes in 0\.3"
    with pytest.warns(DeprecationWarning, match=warning):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_the_old_rollout_module_names_load_from_the_rollout_package() -> None:
    package = importlib.import_module("strangler.rollout")
    controller = importlib.import_module("strangler.rollout.controller")
    assert package.RolloutController is controller.RolloutController
    assert package.rollout_controller_from_settings is controller.rollout_controller_from_settings


def test_a_name_that_never_existed_is_still_not_found() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("strangler.no_such_module")
