"""GET /_strangler/decide and GET /_strangler/orders/<id>."""

from __future__ import annotations

from flask.testing import FlaskClient
from structlog.testing import capture_logs

from tests.unit.sidecar.fakes import FakeRuntime


def test_decide_answers_what_the_flag_says(client: FlaskClient) -> None:
    """The decision for the given order context comes back as JSON."""
    response = client.get("/_strangler/decide?order_id=o-1&user_guid=u-1&unit_id=n-1&city=nyc")
    assert (response.status_code, response.json) == (
        200,
        {
            "order_id": "o-1",
            "path": "instant",
            "variant": "instant",
            "rollout": 25,
            "flag_revision": "rev-7",
            "reason": "in rollout (u-1)",
        },
    )


def test_decide_names_missing_parameters(client: FlaskClient) -> None:
    """A query without user_guid and unit_id is answered 400 naming both."""
    response = client.get("/_strangler/decide?order_id=o-1")
    assert (response.status_code, set(response.json["fields"])) == (400, {"user_guid", "unit_id"})


def test_order_story_is_the_ledgers(client: FlaskClient, runtime: FakeRuntime) -> None:
    """The story of a known order is the ledger's, unchanged; the access log names the order."""
    story = {"order_id": "o-1", "status": "fulfilled", "steps": []}
    runtime.ledger.stories["o-1"] = story
    with capture_logs() as logs:
        response = client.get("/_strangler/orders/o-1")
    assert (response.status_code, response.json) == (200, story)
    assert [e["order_id"] for e in logs if e["event"] == "request"] == ["o-1"]


def test_unknown_order_is_a_json_404(client: FlaskClient) -> None:
    """An order the ledger does not know is a JSON 404 naming it."""
    response = client.get("/_strangler/orders/nope")
    assert (response.status_code, response.json["error"]) == (404, "not_found")
    assert "'nope'" in response.json["message"]


def test_unknown_sidecar_path_is_a_json_404_not_proxied(client: FlaskClient, pool: object) -> None:
    """Paths under /_strangler/ are the sidecar's own: an unknown one is a JSON 404."""
    response = client.get("/_strangler/nothing-here")
    assert (response.status_code, response.json["error"]) == (404, "not_found")
    assert pool.calls == []  # type: ignore[attr-defined]


def test_wrong_method_is_a_json_405(client: FlaskClient) -> None:
    """A method a sidecar endpoint does not take is a JSON 405 with Allow."""
    response = client.delete("/_strangler/healthz")
    assert (response.status_code, response.json["error"]) == (405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
