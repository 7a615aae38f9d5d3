"""GET/PUT /_strangler/rollout through the rollout controller."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from strangler.exceptions import FlagFileError, UnleashAdminError
from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRollout, FakeRuntime

URL = "/_strangler/rollout"
SPLIT = {"instant": 70, "shadow": 30}


def test_show_rollout(client: FlaskClient) -> None:
    """GET shows the controller's view as JSON."""
    response = client.get(URL, headers=AUTH)
    assert (response.status_code, response.json) == (
        200,
        {
            "flag": "city_orders_instant_processing",
            "mode": "embedded",
            "source": "flags/test.json",
            "enabled": True,
            "rollout": 10,
            "variants": {"instant": 100},
            "stage": "live",
            "shares": {"instant": 10.0, "shadow": 0.0},
            "revision": "rev-7",
            "step_since": None,
        },
    )


@pytest.mark.parametrize(
    ("body", "call", "changed"),
    [
        ({"percentage": 25}, ("set_percentage", 25), True),
        ({"enabled": False}, ("kill", None), True),
        ({"enabled": True}, ("enable", None), False),
        ({"variants": SPLIT}, ("set_variants", SPLIT), True),
        ({"stage": "shadow"}, ("set_stage", ("shadow", None, 10)), True),
        (
            {"stage": {"name": "live", "percent": 5, "shadow_share": 20}},
            ("set_stage", ("live", 5, 20)),
            True,
        ),
    ],
    ids=["percentage", "kill", "enable", "variants", "stage-name", "stage-live"],
)
def test_changes_go_through_the_controller(
    client: FlaskClient,
    rollout: FakeRollout,
    body: dict[str, Any],
    call: tuple[str, Any],
    changed: bool,
) -> None:
    """Each change calls the controller with the reason and answers the rollout after it."""
    response = client.put(
        URL, json={**body, "reason": "numbers hold", "actor": "ana"}, headers=AUTH
    )
    assert response.status_code == 200
    assert rollout.calls == [(*call, "ana", "numbers hold")]
    after = client.get(URL, headers=AUTH).json
    assert response.json == {
        **after,
        "changed": changed,
        "no_evidence": False,
        "timeline_recorded": True,
        "timeline_error": None,
    }


def test_actor_defaults_to_the_admin_api_and_caller(
    client: FlaskClient, rollout: FakeRollout
) -> None:
    """Without an actor, the audit names the admin API and the caller's address."""
    client.put(URL, json={"percentage": 5, "reason": "r"}, headers=AUTH)
    assert rollout.calls[0][2] == "admin-api (127.0.0.1)"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"percentage": 150, "reason": "r"}, "0-100"),
        ({"variants": {"instant": 70, "shadow": 20}, "reason": "r"}, "add up to 100"),
        ({"percentage": 5}, "reason"),
        ({"percentage": 5, "reason": "  "}, "reason"),
        ({"percentage": 5, "enabled": True, "reason": "r"}, "exactly one"),
        ({"reason": "r"}, "exactly one"),
        ({"percentage": "5", "reason": "r"}, "whole number"),
        ({"percentage": True, "reason": "r"}, "whole number"),
        ({"enabled": "no", "reason": "r"}, "true or false"),
        ({"variants": ["instant"], "reason": "r"}, "variant names"),
        ({"percent": 5, "reason": "r"}, "unknown field"),
        ({"percentage": 5, "reason": "r", "actor": 7}, "actor"),
        ({"stage": "on", "reason": "r"}, "off, shadow, live, complete"),
        ({"stage": {"name": "live", "pct": 5}, "reason": "r"}, "stage name"),
        ({"stage": {"name": "live", "percent": "5"}, "reason": "r"}, "whole percentage"),
        ({"stage": {"name": "live", "percent": 95}, "reason": "r"}, "shadow share"),
        ({"percentage": 5, "reason": "r", "no_evidence": "yes"}, "true or false"),
        ([25], "JSON object"),
    ],
    ids=[
        "out-of-range",
        "weights",
        "no-reason",
        "blank-reason",
        "two-changes",
        "no-change",
        "string-percentage",
        "bool-percentage",
        "string-enabled",
        "list-variants",
        "typo",
        "actor-type",
        "unknown-stage",
        "stage-typo",
        "stage-percent-type",
        "stage-too-little-shadow",
        "no-evidence-type",
        "not-object",
    ],
)
def test_bad_changes_are_400_naming_the_problem(
    client: FlaskClient, rollout: FakeRollout, body: object, problem: str
) -> None:
    """A change the controller or the API refuses is a 400 saying why; nothing changes."""
    response = client.put(URL, json=body, headers=AUTH)
    assert (response.status_code, response.json["error"]) == (400, "invalid_rollout_change")
    assert problem in response.json["message"]
    assert rollout.calls == []


def test_body_that_is_not_json_is_400(client: FlaskClient) -> None:
    """A PUT body that is not JSON is refused with an example of the right shape."""
    response = client.put(URL, data=b"percentage=5", headers=AUTH)
    assert (response.status_code, "percentage" in response.json["message"]) == (400, True)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(
            UnleashAdminError("Unleash refused: 503", url="http://u/api", status=503), id="unleash"
        ),
        pytest.param(FlagFileError("flags/test.json", "not valid JSON"), id="flag-file"),
    ],
)
@pytest.mark.parametrize("method", ["get", "put"])
def test_flag_store_failure_is_a_502_naming_it(
    client: FlaskClient,
    rollout: FakeRollout,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    method: str,
) -> None:
    """When Unleash or the flag file fails, the admin API answers 502 with the cause."""

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(rollout, "show", fail)
    monkeypatch.setattr(rollout, "set_percentage", fail)
    response = client.open(
        URL, method=method.upper(), json={"percentage": 5, "reason": "r"}, headers=AUTH
    )
    assert response.status_code == 502
    assert response.json == {"error": "flag_store_unavailable", "message": str(failure)}


def test_a_change_goes_on_the_ledger_timeline(
    client: FlaskClient, runtime: FakeRuntime, rollout: FakeRollout
) -> None:
    """An accepted change is recorded as a rollout event; a no-op change is not."""
    client.put(URL, json={"percentage": 40, "reason": "parity holds", "actor": "ana"}, headers=AUTH)
    client.put(URL, json={"enabled": True, "reason": "already on"}, headers=AUTH)
    (event,) = runtime.ledger.recorded_events
    assert (event.actor, event.from_rollout, event.to_rollout, event.reason) == (
        "ana",
        10,
        40,
        "parity holds",
    )
    assert event.flag_revision == rollout.state.revision


def test_a_ledger_failure_does_not_undo_the_answer(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """The change is made and audited even when the ledger cannot take the event."""
    runtime.ledger.broken = True
    response = client.put(URL, json={"percentage": 40, "reason": "r"}, headers=AUTH)
    assert (response.status_code, response.json["rollout"]) == (200, 40)


def test_going_live_without_evidence_is_409_saying_what_is_missing(
    client: FlaskClient, rollout: FakeRollout
) -> None:
    """A controller refusing for want of evidence answers 409 and says how to override;
    with no_evidence the same change goes through and the answer says so."""

    rollout.evidence_missing = "mismatch: no comparisons yet: 0 of 765 needed per step"
    response = client.put(URL, json={"stage": "live", "reason": "go"}, headers=AUTH)
    assert (response.status_code, response.json["error"]) == (409, "evidence_required")
    assert "no comparisons yet" in response.json["message"]
    assert '"no_evidence": true' in response.json["message"]
    assert rollout.calls == []
    forced = client.put(
        URL, json={"stage": "live", "reason": "go", "no_evidence": True}, headers=AUTH
    )
    assert (forced.status_code, forced.json["stage"], forced.json["no_evidence"]) == (
        200,
        "live",
        True,
    )
