"""The Unleash client specification, through the bootstrap path EmbeddedFlagSource uses.

Every case of every file listed in the specification's index runs: the state goes into a
DefinitionsCache, offline_unleash_client bootstraps the SDK from it (no network), and the
client answers ``is_enabled`` / ``get_variant``. The npm package is installed by
``make test``; without it these skip (and fail under CI=true).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from UnleashClient.clients.unleash_client import UnleashClient

from strangler.flags import DefinitionsCache, offline_unleash_client
from tests.helpers import REPO_ROOT, require

SPEC_DIR = REPO_ROOT / "node_modules" / "@unleash" / "client-specification" / "specifications"
MISSING = "node_modules/@unleash/client-specification is missing: run `make test` (npm ci)"


def _cases(kind: str) -> list[Any]:
    index = SPEC_DIR / "index.json"
    if not index.is_file():
        return [pytest.param(None, None, id="specification-missing")]
    cases = []
    for name in json.loads(index.read_text()):
        spec = json.loads((SPEC_DIR / name).read_text())
        for number, case in enumerate(spec.get(kind, [])):
            case_id = f"{Path(name).stem}:{number:02d}:{case['description']}"
            cases.append(pytest.param(name, case, id=case_id))
    return cases


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, UnleashClient]]:
    """One bootstrapped offline client per specification file, built on first use."""
    built: dict[str, UnleashClient] = {}
    yield built
    for client in built.values():
        client.destroy()


def _client(clients: dict[str, UnleashClient], spec_name: str | None) -> UnleashClient:
    require(spec_name is not None, MISSING)
    assert spec_name is not None
    if spec_name not in clients:
        state = json.loads((SPEC_DIR / spec_name).read_text())["state"]
        clients[spec_name] = offline_unleash_client(DefinitionsCache(json.dumps(state)))
    return clients[spec_name]


@pytest.mark.parametrize(("spec_name", "case"), _cases("tests"))
def test_is_enabled(
    clients: dict[str, UnleashClient], spec_name: str | None, case: dict[str, Any]
) -> None:
    """is_enabled gives the specification's expected answer for this context."""
    client = _client(clients, spec_name)
    assert (
        client.is_enabled(case["toggleName"], case.get("context") or {}) is case["expectedResult"]
    )


@pytest.mark.parametrize(("spec_name", "case"), _cases("variantTests"))
def test_get_variant(
    clients: dict[str, UnleashClient], spec_name: str | None, case: dict[str, Any]
) -> None:
    """get_variant gives the specification's expected variant for this context."""
    client = _client(clients, spec_name)
    expected = dict(case["expectedResult"])
    variant = client.get_variant(case["toggleName"], case.get("context") or {})
    assert {key: variant.get(key) for key in expected} == expected
