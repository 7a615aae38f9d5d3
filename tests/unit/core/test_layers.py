"""The folder rules of strangler/, held by walking every module's imports (AST, no import).

Each folder states its rule in its README.md; docs/architecture.md has the picture. An
import counts wherever it is written: at the top, inside a function, or under
TYPE_CHECKING, because each of them is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "strangler"

FACE = frozenset({"strangler", "strangler.__main__"})
"""The package face: names load lazily from every part, so it may name any of them."""

KERNEL = frozenset(
    {
        "strangler._lazy",
        "strangler._moved",
        "strangler.backoff",
        "strangler.exceptions",
        "strangler.logs",
        "strangler.orders",
        "strangler.protocols",
        "strangler.settings",
        "strangler.testing",
    }
)
"""The modules every part speaks: stdlib and structlog only (plus RECORDS)."""

RECORDS = frozenset(
    {
        "strangler.instant.results",
        "strangler.legacy_adapter.exceptions",
        "strangler.legacy_adapter.models",
    }
)
"""The parts' record modules the kernel's seams and fakes are typed in; stdlib-only themselves."""

FOLDERS = (
    "aws",
    "background",
    "cli",
    "compare",
    "demo",
    "flags",
    "instant",
    "ledger",
    "legacy_adapter",
    "report",
    "rollout",
    "routing",
    "sidecar",
    "sim",
)

LIBRARY_HOMES = {
    "sqlalchemy": {"ledger"},
    "psycopg": {"ledger"},
    "click": {"cli"},
    "flask": {"sidecar", "sim"},
    "werkzeug": {"sidecar", "sim"},
    "gunicorn": {"sidecar"},
    "prometheus_client": {"sidecar"},
    "waitress": {"sim"},
    "boto3": {"aws", "cli", "instant"},
    "botocore": {"aws", "cli", "instant"},
    "UnleashClient": {"flags"},
    "matplotlib": {"report"},
}
"""Which folders may import each heavy library: everything else reaches it through them."""


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target, and where it is written."""

    module: str
    target: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder_of(module: str) -> str:
    """The folder a module lives in, "face" or "kernel" for the top-level modules."""
    if module in FACE:
        return "face"
    parts = module.split(".")
    if module in KERNEL or len(parts) < 2:
        return "kernel"
    return parts[1]


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.extend(Import(module, alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append(Import(module, node.module, node.lineno))
    return tuple(found)


def imports_from(folders: set[str]) -> Iterator[Import]:
    return (each for each in all_imports() if folder_of(each.module) in folders)


def _internal(target: str) -> bool:
    return target == "strangler" or target.startswith("strangler.")


def _top(target: str) -> str:
    return target.split(".", maxsplit=1)[0]


def test_the_walk_sees_the_whole_package() -> None:
    modules = {each.module for each in all_imports()}
    assert {"strangler.routing.router", "strangler.ledger.sql_ledger", "strangler.cli.main"} <= (
        modules
    )
    assert {folder_of(module) for module in modules} == {"face", "kernel", *FOLDERS}


@pytest.mark.parametrize("library", sorted(LIBRARY_HOMES))
def test_a_heavy_library_is_imported_only_in_its_home_folders(library: str) -> None:
    homes = LIBRARY_HOMES[library]
    strays = [
        each.where
        for each in all_imports()
        if _top(each.target) == library and folder_of(each.module) not in homes
    ]
    assert strays == [], f"{library} belongs to {sorted(homes)}"


def test_the_kernel_speaks_stdlib_structlog_and_itself() -> None:
    allowed_third_party = {"structlog"}
    strays = [
        each.where
        for each in {*imports_from({"kernel"}), *_records_imports()}
        if not _stdlib_or(each.target, allowed_third_party)
        and not (_internal(each.target) and _kernel_grade(each.target))
    ]
    assert strays == []


def _records_imports() -> set[Import]:
    return {each for each in all_imports() if each.module in RECORDS}


def _kernel_grade(target: str) -> bool:
    return target in KERNEL or target in RECORDS


def _stdlib_or(target: str, allowed: set[str]) -> bool:
    top = _top(target)
    return top in sys.stdlib_module_names or top == "__future__" or top in allowed


@pytest.mark.parametrize("folder", ["compare", "report"])
def test_compare_and_report_import_nothing_outside_the_kernel(folder: str) -> None:
    """Pure folders: values in, values out; matplotlib draws the report's charts in memory."""
    libraries = {"matplotlib"} if folder == "report" else set()
    strays = [each.where for each in imports_from({folder}) if not _pure(each, folder, libraries)]
    assert strays == []


def _pure(each: Import, folder: str, libraries: set[str]) -> bool:
    if _internal(each.target):
        return folder_of(each.target) in {"kernel", folder}
    return _stdlib_or(each.target, libraries)


def test_the_pure_rollout_rules_do_no_io() -> None:
    pure = {"strangler.rollout.policy", "strangler.rollout.stage"}
    strays = [
        each.where
        for each in all_imports()
        if each.module in pure and not _pure(each, "kernel", set())
    ]
    assert strays == []


def test_only_the_simulator_the_cli_and_the_demo_import_the_simulator() -> None:
    strays = [
        each.where
        for each in all_imports()
        if folder_of(each.target) == "sim"
        and _internal(each.target)
        and folder_of(each.module) not in {"sim", "cli", "demo"}
    ]
    assert strays == []


def test_no_part_depends_on_the_command_line() -> None:
    strays = [
        each.where
        for each in all_imports()
        if _internal(each.target)
        and folder_of(each.target) == "cli"
        and folder_of(each.module) not in {"cli", "face"}
    ]
    assert strays == []


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_folder_states_its_rule(folder: str) -> None:
    readme = PACKAGE / folder / "README.md"
    assert readme.is_file(), f"strangler/{folder}/README.md is missing"
    title, *rule = readme.read_text().strip().splitlines()
    assert title.startswith(f"# strangler/{folder}")
    assert any(line.strip() for line in rule), f"strangler/{folder}/README.md states no rule"


def test_the_package_keeps_few_top_level_entries() -> None:
    """Folders and the kernel only: a new single-file module goes into a folder."""
    entries = {
        path.name for path in PACKAGE.iterdir() if path.name not in {"__pycache__", "py.typed"}
    }
    modules = {name for name in entries if name.endswith(".py")}
    expected = {f"{name.split('.')[-1]}.py" for name in KERNEL | FACE - {"strangler"}}
    assert modules == expected | {"__init__.py"}
    assert entries - modules == set(FOLDERS)
