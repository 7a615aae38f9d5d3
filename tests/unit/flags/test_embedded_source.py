"""EmbeddedFlagSource: decisions from the flag file, live reload, corrupt files, no network."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from structlog.testing import capture_logs

from strangler.flags import EmbeddedFlagSource, order_context
from strangler.orders import OrderNotification, Route
from tests.helpers import wait_until
from tests.unit.flags.conftest import make_orders, write_flag

Build = Callable[..., EmbeddedFlagSource]
ORDER = OrderNotification.from_dict({"order_id": "o-1", "user_guid": "u-1", "unit_id": "x"})


@pytest.mark.parametrize(
    ("routing", "path", "variant", "reason"),
    [
        pytest.param({"rollout": 100}, Route.INSTANT, "instant", "in_rollout", id="instant"),
        pytest.param(
            {"rollout": 100, "variants": {"instant": 0, "shadow": 1000}},
            Route.SHADOW,
            "shadow",
            "in_rollout",
            id="shadow",
        ),
        pytest.param({"rollout": 0}, Route.LEGACY, "disabled", "outside_rollout", id="out"),
        pytest.param(
            {"rollout": 100, "enabled": False},
            Route.LEGACY,
            "disabled",
            "flag_disabled",
            id="disabled",
        ),
    ],
)
def test_decision_follows_the_file(
    tmp_path: Path,
    embedded: Build,
    routing: dict[str, Any],
    path: Route,
    variant: str,
    reason: str,
) -> None:
    """Each flag state gives the path, variant, rollout and reason the design names."""
    source = embedded(write_flag(tmp_path / "flag.json", **routing))
    decision = source.decide(ORDER)
    assert (decision.path, decision.variant, decision.reason) == (path, variant, reason)
    assert decision.rollout == routing["rollout"]
    assert decision.flag_revision == source.status().revision


def test_split_between_variants(tmp_path: Path, embedded: Build) -> None:
    """At 100% with instant=70,shadow=30 the orders split about 70/30, none to legacy."""
    source = embedded(
        write_flag(tmp_path / "f.json", rollout=100, variants={"instant": 700, "shadow": 300})
    )
    paths = Counter(source.decide(order).path for order in make_orders(4000))
    assert paths[Route.LEGACY] == 0
    assert abs(paths[Route.INSTANT] / 4000 - 0.7) < 0.03


def test_status_when_loaded(flag_file: Path, embedded: Build) -> None:
    """status() says loaded, embedded, the revision and no error."""
    status = embedded(flag_file).status()
    assert (status.loaded, status.mode, status.last_error) == (True, "embedded", None)
    assert len(status.revision) == 12
    assert status.loaded_at is not None


def test_edit_is_picked_up_within_two_seconds(tmp_path: Path, embedded: Build) -> None:
    """Rewriting the file changes decisions within 2 s, without a restart."""
    path = write_flag(tmp_path / "flag.json", rollout=0)
    source = embedded(path)
    write_flag(path, rollout=100)
    wait_until(lambda: source.decide(ORDER).path is Route.INSTANT, 2.0, "the edit")
    assert source.decide(ORDER).rollout == 100


def test_corrupt_file_keeps_last_good_definitions(tmp_path: Path, embedded: Build) -> None:
    """A corrupt file is reported in status() and the log; decisions keep the last good file."""
    path = write_flag(tmp_path / "flag.json", rollout=100)
    source = embedded(path)
    good = source.decide(ORDER)
    with capture_logs() as logs:
        path.write_text('{"features": [')
        wait_until(lambda: source.status().last_error is not None, 2.0, "the corrupt file")
    assert source.decide(ORDER) == good
    assert "is not valid JSON" in str(source.status().last_error)
    assert [log["event"] for log in logs if log["log_level"] == "error"] == [
        "flag_definitions_rejected"
    ]
    write_flag(path, rollout=0)
    wait_until(lambda: source.status().last_error is None, 2.0, "the repaired file")
    assert source.decide(ORDER).reason == "outside_rollout"


def test_invalid_file_at_start_routes_legacy_and_is_not_ready(
    tmp_path: Path, embedded: Build
) -> None:
    """With no good file at all, orders go to legacy and status() is not loaded."""
    path = tmp_path / "flag.json"
    path.write_text("[]")
    source = embedded(path)
    decision = source.decide(ORDER)
    status = source.status()
    assert (decision.path, decision.reason, decision.flag_revision) == (
        Route.LEGACY,
        "flag_unknown",
        "none",
    )
    assert (status.loaded, "must be a JSON object" in str(status.last_error)) == (False, True)


def test_missing_file_is_reported(tmp_path: Path, embedded: Build) -> None:
    """A missing file is reported, and routing resumes once the file appears."""
    path = tmp_path / "flag.json"
    source = embedded(path)
    assert "cannot read it" in str(source.status().last_error)
    write_flag(path, rollout=100)
    wait_until(lambda: source.decide(ORDER).path is Route.INSTANT, 2.0, "the new file")


def test_another_flag_name_is_unknown(flag_file: Path, embedded: Build) -> None:
    """Asking for a flag the file does not hold routes legacy with flag_unknown."""
    source = embedded(flag_file, flag_name="not_this_flag")
    assert source.decide(ORDER).reason == "flag_unknown"


def test_decide_never_raises(flag_file: Path, embedded: Build) -> None:
    """Garbage in and a closed source both give legacy with flag_source_error, not a raise."""
    source = embedded(flag_file)
    broken: Any = type("Broken", (), {"order_id": "b", "user_guid": None, "unit_id": "u"})()
    garbage = source.decide(broken)
    source.close()
    closed = source.decide(ORDER)
    assert (garbage.path, garbage.reason.split(":")[0]) == (Route.LEGACY, "flag_source_error")
    assert closed.reason == "flag_source_error:the flag source is closed or was never started"


def test_order_context_carries_the_order_fields() -> None:
    """The Unleash context has userId = user_guid and orderId, unitId, city properties."""
    order = OrderNotification.from_dict(
        {"order_id": "o", "user_guid": "u", "unit_id": "n", "city": "sf"}
    )
    assert order_context(order) == {
        "userId": "u",
        "properties": {"orderId": "o", "unitId": "n", "city": "sf"},
    }


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[Any]]]:
    """Refuses every socket connection, name lookup and HTTP call; gives what was tried."""
    attempts: list[Any] = []

    def refuse(*args: Any, **_kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield lambda: [*attempts, *(call.request.url for call in mock.calls)]


def test_embedded_mode_never_touches_the_network(
    tmp_path: Path, embedded: Build, network_guard: Callable[[], list[Any]]
) -> None:
    """Start, decide, reload and close open no socket and make no HTTP request."""
    path = write_flag(tmp_path / "flag.json", rollout=0)
    source = embedded(path)
    source.decide(ORDER)
    write_flag(path, rollout=100)
    wait_until(lambda: source.decide(ORDER).rollout == 100, 2.0, "the reload")
    source.close()
    assert network_guard() == []


def test_network_guard_sees_a_server_mode_client(
    flag_file: Path, network_guard: Callable[[], list[Any]]
) -> None:
    """The guard above is real: a server-mode source under it is caught trying to connect."""
    from strangler.flags import UnleashFlagSource  # noqa: PLC0415 (only this test needs it)

    source = UnleashFlagSource("http://127.0.0.1:9/api", "token", bootstrap_file=flag_file)
    wait_until(lambda: bool(network_guard()), 2.0, "a connection attempt")
    source.close()
    assert "http://127.0.0.1:9/api/client/register" in network_guard()
