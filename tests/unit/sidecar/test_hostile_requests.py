"""Hostile input to the /_strangler/ API is answered with a 4xx naming the problem (issue 9)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRollout, FakeRuntime
from tests.unit.sidecar.sns_signing import SnsSigner

DEEP = b"[" * 15_000  # under the rollout body limit (16 KiB), far over any parser depth
ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"}
JSON = {"Content-Type": "application/json"}


def raw_json(data: dict[str, Any]) -> bytes:
    """``data`` as JSON text with non-ASCII escaped, so lone surrogates go through as \\udXXX."""
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("POST", "/_strangler/notifications", AUTH),
        ("POST", "/_strangler/sns", {}),
        ("PUT", "/_strangler/rollout", AUTH),
    ],
    ids=["notifications", "sns", "rollout"],
)
def test_deep_nesting_is_a_400(
    client: FlaskClient, rollout: FakeRollout, method: str, url: str, headers: dict[str, str]
) -> None:
    """15,000 nested arrays are refused with a 400 saying the nesting is too deep."""
    response = client.open(url, method=method, data=DEEP, headers={**headers, **JSON})
    assert response.status_code == 400
    assert "nested too deeply" in response.json["message"]
    assert rollout.calls == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"order_id": "a\ud800b"}, "order_id"),
        ({"user_guid": "\udfff"}, "user_guid"),
        ({"city": "x\ud800"}, "city"),
        ({"note": "x\ud800"}, "note"),
        ({"note": float("nan")}, "note"),
        ({"note": {"deep": [float("inf")]}}, "note"),
        ({"order_id": "o/1"}, "order_id"),
    ],
    ids=[
        "surrogate-id",
        "surrogate-guid",
        "surrogate-city",
        "surrogate-extra",
        "nan-extra",
        "infinity-extra",
        "slash-id",
    ],
)
def test_values_the_ledger_cannot_keep_are_400_naming_the_field(
    client: FlaskClient, runtime: FakeRuntime, changes: dict[str, Any], field: str
) -> None:
    """Lone surrogates, NaN/Infinity and ids with '/' are refused at intake, naming the field."""
    body = raw_json({**ORDER, **changes})
    response = client.post("/_strangler/notifications", data=body, headers={**AUTH, **JSON})
    assert (response.status_code, response.json["error"]) == (400, "invalid_notification")
    assert list(response.json["fields"]) == [field]
    assert runtime.router.taken == []


@pytest.mark.parametrize(
    "body",
    [
        {"percentage": 5, "reason": "a\ud800b"},
        {"percentage": 5, "reason": "r", "actor": "a\ud800b"},
        {"percentage": 5, "reason": "r", "actor": {}},
        {"percentage": 5, "reason": "r", "actor": ""},
        {"percentage": 5, "reason": "line\x00break"},
    ],
    ids=["surrogate-reason", "surrogate-actor", "object-actor", "empty-actor", "control-reason"],
)
def test_bad_audit_text_is_refused_before_anything_changes(
    client: FlaskClient, rollout: FakeRollout, runtime: FakeRuntime, body: dict[str, Any]
) -> None:
    """A reason or actor the audit log and ledger cannot keep is a 400 and changes nothing."""
    response = client.put("/_strangler/rollout", data=raw_json(body), headers={**AUTH, **JSON})
    assert (response.status_code, response.json["error"]) == (400, "invalid_rollout_change")
    assert (rollout.calls, runtime.ledger.recorded_events) == ([], [])


def test_a_change_the_timeline_missed_says_it_took_effect(
    client: FlaskClient, runtime: FakeRuntime
) -> None:
    """When the ledger timeline fails after the flag changed, the answer says both."""
    runtime.ledger.broken = True
    response = client.put(URL_ROLLOUT, json={"percentage": 40, "reason": "r"}, headers=AUTH)
    assert response.status_code == 200
    assert (response.json["changed"], response.json["rollout"]) == (True, 40)
    assert response.json["timeline_recorded"] is False


def test_a_recorded_change_says_so(client: FlaskClient) -> None:
    """A change that reached the ledger timeline answers timeline_recorded true."""
    response = client.put(URL_ROLLOUT, json={"percentage": 40, "reason": "r"}, headers=AUTH)
    assert (response.status_code, response.json["timeline_recorded"]) == (200, True)


def test_nan_in_an_sns_message_is_refused(
    client: FlaskClient, signer: SnsSigner, runtime: FakeRuntime
) -> None:
    """An SNS message whose order carries NaN is refused like a direct notification."""
    message = '{"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1", "score": NaN}'
    envelope = signer.notification(message)
    response = client.post("/_strangler/sns", data=json.dumps(envelope), headers=JSON)
    assert (response.status_code, list(response.json["fields"])) == (400, ["score"])
    assert runtime.router.taken == []


URL_ROLLOUT = "/_strangler/rollout"
