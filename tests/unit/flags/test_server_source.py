"""UnleashFlagSource against a stubbed client API, a dead server and a black hole."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from strangler.flags import FLAG_NAME, UnleashFlagSource, flag_revision
from strangler.orders import OrderNotification, Route
from tests.helpers import free_port, wait_until
from tests.unit.flags.conftest import flag_document, write_flag

API = "http://unleash.test/api"
ORDER = OrderNotification.from_dict({"order_id": "o-1", "user_guid": "u-1", "unit_id": "x"})


def _server_feature(*, variants: list[dict[str, Any]], enabled: bool = True) -> dict[str, Any]:
    return {
        "name": FLAG_NAME,
        "type": "experiment",
        "enabled": enabled,
        "project": "default",
        "strategies": [
            {
                "name": "flexibleRollout",
                "constraints": [],
                "parameters": {"rollout": "100", "stickiness": "userId", "groupId": FLAG_NAME},
                "variants": variants,
            }
        ],
    }


def _variant(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "weight": 1000,
        "weightType": "variable",
        "stickiness": "userId",
        "payload": {"type": "string", "value": name},
    }


@pytest.fixture
def stub_api() -> Iterator[responses.RequestsMock]:
    """A stubbed Unleash client API (register accepted; features added by each test)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{API}/client/register", status=202)
        yield mock


@pytest.fixture
def sources() -> Iterator[list[UnleashFlagSource]]:
    """Server-mode sources to close after the test."""
    built: list[UnleashFlagSource] = []
    yield built
    for source in built:
        source.close()


def _serve(mock: responses.RequestsMock, features: list[dict[str, Any]]) -> None:
    body = {"version": 2, "features": features, "meta": {"revisionId": 7}}
    mock.get(f"{API}/client/features", json=body, headers={"ETag": '"abc:7"'})


def _source(sources: list[UnleashFlagSource], url: str = API, **options: Any) -> UnleashFlagSource:
    options.setdefault("report_usage", False)
    source = UnleashFlagSource(url, "default:development.secret", **options)
    sources.append(source)
    return source


@pytest.mark.parametrize(
    ("features", "path", "reason"),
    [
        pytest.param(
            [_server_feature(variants=[_variant("instant")])],
            Route.INSTANT,
            "in_rollout",
            id="instant",
        ),
        pytest.param(
            [_server_feature(variants=[_variant("warp")])],
            Route.LEGACY,
            "unknown_variant:warp",
            id="unknown-variant",
        ),
        pytest.param([_server_feature(variants=[])], Route.LEGACY, "no_variant", id="no-variant"),
        pytest.param(
            [_server_feature(variants=[_variant("instant")], enabled=False)],
            Route.LEGACY,
            "flag_disabled",
            id="disabled",
        ),
        pytest.param([], Route.LEGACY, "flag_unknown", id="flag-missing"),
    ],
)
def test_decisions_follow_the_server(
    stub_api: responses.RequestsMock,
    sources: list[UnleashFlagSource],
    features: list[dict[str, Any]],
    path: Route,
    reason: str,
) -> None:
    """Once fetched, the server's definitions decide, with the design's reasons."""
    _serve(stub_api, features)
    source = _source(sources)
    wait_until(lambda: source.decide(ORDER).reason == reason, 3.0, f"reason {reason}")
    assert source.decide(ORDER).path is path


def test_fetch_carries_the_client_token_and_project(
    stub_api: responses.RequestsMock, sources: list[UnleashFlagSource]
) -> None:
    """The SDK asks the client API with the token and the project filter."""
    _serve(stub_api, [])
    source = _source(sources)
    wait_until(lambda: source.decide(ORDER).reason == "flag_unknown", 3.0, "a fetch")
    fetch = next(c for c in stub_api.calls if c.request.method == "GET")
    assert fetch.request.headers["Authorization"] == "default:development.secret"
    assert fetch.request.url == f"{API}/client/features?project=default"


def test_revision_is_the_server_flag_content(
    stub_api: responses.RequestsMock, sources: list[UnleashFlagSource]
) -> None:
    """The revision in decisions is the content hash of the flag the server sent."""
    feature = _server_feature(variants=[_variant("shadow")])
    _serve(stub_api, [feature])
    source = _source(sources)
    wait_until(lambda: source.decide(ORDER).path is Route.SHADOW, 3.0, "the fetch")
    assert source.decide(ORDER).flag_revision == flag_revision(feature)
    assert source.status().last_error is None


def test_without_bootstrap_nothing_is_loaded_until_the_server_answers(
    sources: list[UnleashFlagSource],
) -> None:
    """No bootstrap file and no server: legacy, flags_not_loaded, and not ready."""
    source = _source(sources, f"http://127.0.0.1:{free_port()}/api", stale_after_s=0.2)
    decision = source.decide(ORDER)
    assert (decision.path, decision.reason) == (Route.LEGACY, "flags_not_loaded")
    wait_until(lambda: source.status().last_error is not None, 3.0, "the staleness report")
    assert source.status().loaded is False
    assert "no answer from" in str(source.status().last_error)


def test_cold_start_with_server_down_routes_by_the_file(
    tmp_path: Path, sources: list[UnleashFlagSource]
) -> None:
    """With the server down, the bootstrap file routes, and status() reports the silence."""
    bootstrap = write_flag(tmp_path / "flag.json", rollout=100)
    dead = f"http://127.0.0.1:{free_port()}/api"
    source = _source(sources, dead, bootstrap_file=bootstrap, stale_after_s=0.3)
    decision = source.decide(ORDER)
    assert (decision.path, decision.rollout) == (Route.INSTANT, 100)
    wait_until(lambda: source.status().last_error is not None, 3.0, "the staleness report")
    status = source.status()
    assert (status.loaded, status.mode) == (True, "server")
    assert f"no answer from {dead}" in str(status.last_error)
    assert "routing by the bootstrap file" in str(status.last_error)


def test_invalid_bootstrap_file_is_reported(
    tmp_path: Path, sources: list[UnleashFlagSource]
) -> None:
    """A bootstrap file that fails validation is reported and not used."""
    bootstrap = write_flag(tmp_path / "flag.json", document=flag_document(rollout=101))
    source = _source(sources, f"http://127.0.0.1:{free_port()}/api", bootstrap_file=bootstrap)
    assert source.decide(ORDER).reason == "flags_not_loaded"
    assert "bootstrap flag file" in str(source.status().last_error)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"


def test_black_holed_server_never_blocks_decide(
    tmp_path: Path, sources: list[UnleashFlagSource], black_hole: str
) -> None:
    """While the SDK's start-up fetch hangs on a silent server, decide answers from the file."""
    bootstrap = write_flag(tmp_path / "flag.json", rollout=100)
    started = time.monotonic()
    source = _source(sources, black_hole, bootstrap_file=bootstrap)
    decisions = [source.decide(ORDER) for _ in range(100)]
    elapsed = time.monotonic() - started
    assert {d.path for d in decisions} == {Route.INSTANT}
    assert elapsed < 0.5  # the fetch alone waits a 1 s timeout, twice
    source.close()
    assert time.monotonic() - started < 6.0


def test_bad_url_is_reported_not_raised(sources: list[UnleashFlagSource]) -> None:
    """A URL the SDK cannot use is reported by status(), and decide still answers."""
    source = _source(sources, "not a url", report_usage=True)
    wait_until(lambda: source.status().last_error is not None, 3.0, "the start-up error")
    assert "cannot start the Unleash client" in str(source.status().last_error)
    assert source.decide(ORDER).path is Route.LEGACY


def test_usage_is_reported_to_the_server(
    stub_api: responses.RequestsMock, sources: list[UnleashFlagSource]
) -> None:
    """With report_usage, decisions are counted and the SDK sends them (flushed on close)."""
    _serve(stub_api, [_server_feature(variants=[_variant("instant")])])
    stub_api.post(f"{API}/client/metrics", status=202)
    source = _source(sources, report_usage=True)
    wait_until(lambda: source.decide(ORDER).path is Route.INSTANT, 3.0, "the fetch")
    for _ in range(4):
        source.decide(ORDER)
    source.close()
    (posted,) = [c for c in stub_api.calls if c.request.url == f"{API}/client/metrics"]
    toggle = json.loads(posted.request.body or b"{}")["bucket"]["toggles"][FLAG_NAME]
    assert toggle["yes"] >= 5
    assert toggle["variants"]["instant"] == toggle["yes"]
